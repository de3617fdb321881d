//! Bad input never gets past the loader: every case is a typed `Error` whose
//! message names the file, the tensor (where there is one) and the problem;
//! nothing panics. All files are built here from `init::deterministic`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use resnet50::init::deterministic;
use resnet50::loaders::export::{self, H5Layer, H5Layout, Tensor};
use resnet50::loaders::export::{OnnxAttr, OnnxModel, OnnxNode};
use resnet50::loaders::names::Scheme;
use resnet50::loaders::{self, keras_h5, native, onnx, pytorch, safetensors as st_loader};
use resnet50::{CanonicalWeights, Error, ResNet50, Variant, WeightsSource};
use safetensors::Dtype;

/// A directory for one test's files, removed when the test ends (also when it
/// fails): the files here reach hundreds of MB per run.
fn tmp() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("resnet50-weights-errors-").tempdir().unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn v15() -> &'static CanonicalWeights {
    static W: OnceLock<CanonicalWeights> = OnceLock::new();
    W.get_or_init(|| deterministic(Variant::V1_5, Some(10)))
}

fn v1() -> &'static CanonicalWeights {
    static W: OnceLock<CanonicalWeights> = OnceLock::new();
    W.get_or_init(|| deterministic(Variant::V1, Some(10)))
}

fn tv_tensors() -> Vec<Tensor> {
    export::safetensors_tensors(v15(), Scheme::Torchvision)
}

fn tv_bytes() -> &'static [u8] {
    static B: OnceLock<Vec<u8>> = OnceLock::new();
    B.get_or_init(|| export::safetensors_bytes(&tv_tensors()).unwrap())
}

fn pth_bytes() -> &'static [u8] {
    static B: OnceLock<Vec<u8>> = OnceLock::new();
    B.get_or_init(|| export::pytorch_bytes(&tv_tensors()).unwrap())
}

/// A zip archive of stored members, as torch writes them.
fn zip_of(members: &[(&str, &[u8])]) -> Vec<u8> {
    export::zip_bytes(members).unwrap()
}

fn h5_layers() -> Vec<H5Layer> {
    export::keras_h5_layers(v1(), H5Layout::Keras)
}

fn h5_bytes() -> &'static [u8] {
    static B: OnceLock<Vec<u8>> = OnceLock::new();
    B.get_or_init(|| export::keras_h5_bytes(&h5_layers(), H5Layout::Keras, false).unwrap())
}

fn onnx_model() -> &'static OnnxModel {
    static M: OnceLock<OnnxModel> = OnceLock::new();
    M.get_or_init(|| export::onnx_model(v15(), 1e-5, false))
}

fn onnx_bytes() -> &'static [u8] {
    static B: OnceLock<Vec<u8>> = OnceLock::new();
    B.get_or_init(|| onnx_model().to_bytes())
}

fn native_bytes() -> &'static [u8] {
    static B: OnceLock<Vec<u8>> = OnceLock::new();
    B.get_or_init(|| native::to_bytes(v1(), 1.001e-5).unwrap())
}

/// The error of opening `path`; asserts it is a typed weights/IO error naming the file.
fn open_err(path: &Path) -> String {
    let e = match loaders::open(path) {
        Ok(_) => panic!("{} should not load", path.display()),
        Err(e) => e,
    };
    assert!(matches!(e, Error::Weights(_) | Error::Io { .. }), "untyped error {e:?}");
    let msg = e.to_string();
    assert!(msg.contains(&path.display().to_string()), "message does not name the file: {msg}");
    msg
}

fn st_err(dir: &Path, name: &str, tensors: &[Tensor]) -> String {
    let p = write(dir, name, &export::safetensors_bytes(tensors).unwrap());
    let m = open_err(&p);
    std::fs::remove_file(p).unwrap();
    m
}

fn h5_err(dir: &Path, name: &str, layers: &[H5Layer]) -> String {
    let p = write(dir, name, &export::keras_h5_bytes(layers, H5Layout::Keras, false).unwrap());
    let m = open_err(&p);
    std::fs::remove_file(p).unwrap();
    m
}

#[test]
fn empty_directory_missing_and_special_paths() {
    let tmp = tmp();
    let dir = tmp.path();
    let p = write(dir, "empty.safetensors", b"");
    assert!(open_err(&p).contains("empty"));
    let d = dir.join("a-directory.h5");
    std::fs::create_dir_all(&d).unwrap();
    assert!(open_err(&d).contains("directory"));
    let missing = dir.join("does-not-exist.safetensors");
    let m = open_err(&missing);
    assert!(m.contains("No such file"), "{m}");
    // A path through a regular file cannot be opened either.
    let through = p.join("x.h5");
    assert!(matches!(loaders::open(&through), Err(Error::Io { .. })));
    let m = open_err(Path::new("/dev/null"));
    assert!(m.contains("not a regular file"), "{m}");
    // Through the model too.
    let e = ResNet50::new().weights(WeightsSource::File(missing.clone())).build().unwrap_err().to_string();
    assert!(e.contains("does-not-exist.safetensors"), "{e}");
    // Unknown content and other containers.
    let p = write(dir, "random.bin", &[7u8; 100]);
    assert!(open_err(&p).contains("unrecognised weights format"));
    let p = write(dir, "model.pth", b"PK\x03\x04rest-of-a-zip");
    assert!(open_err(&p).contains("not a valid zip archive"));
}

#[test]
fn truncated_files_of_every_format() {
    let tmp = tmp();
    let dir = tmp.path();
    for (name, bytes) in [
        ("t.safetensors", tv_bytes()),
        ("t.h5", h5_bytes()),
        ("t.r50w", native_bytes()),
        ("t.pth", pth_bytes()),
        ("t.onnx", onnx_bytes()),
    ] {
        for cut in [4, 9, 63, 200, 5000, bytes.len() / 2, bytes.len() - 1] {
            let p = write(dir, name, &bytes[..cut]);
            let m = open_err(&p);
            assert!(
                m.contains("truncated") || m.contains("unrecognised") || m.contains("corrupt"),
                "{name} cut at {cut}: {m}"
            );
        }
    }
}

#[test]
fn native_corruption_and_mismatches() {
    let tmp = tmp();
    let dir = tmp.path();
    let good = native_bytes();
    // A flipped byte anywhere is a checksum error.
    for at in [70, 200, 4096, good.len() / 3, good.len() - 5] {
        let mut b = good.to_vec();
        b[at] ^= 0x20;
        let p = write(dir, "flip.r50w", &b);
        assert!(open_err(&p).contains("checksum mismatch"), "flip at {at}");
    }
    // Wrong magic → not recognised; wrong version → named.
    let mut b = good.to_vec();
    b[1] = b'X';
    assert!(open_err(&write(dir, "magic.r50w", &b)).contains("unrecognised"));
    let mut b = good.to_vec();
    b[8] = 2;
    assert!(open_err(&write(dir, "version.r50w", &b)).contains("version 2"));
    // Header and table fields, with a valid checksum so the field check is what fires.
    let patched = |edit: &dyn Fn(&mut Vec<u8>)| -> String {
        let mut b = good.to_vec();
        edit(&mut b);
        let sum = native::checksum(&b);
        b[48..56].copy_from_slice(&sum.to_le_bytes());
        open_err(&write(dir, "patched.r50w", &b))
    };
    let rec = |r: usize, field: usize| 64 + r * 64 + field;
    let set32 = |b: &mut Vec<u8>, at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    let set64 = |b: &mut Vec<u8>, at: usize, v: u64| b[at..at + 8].copy_from_slice(&v.to_le_bytes());
    assert!(patched(&|b| set32(b, 16, 7)).contains("variant code 7"));
    assert!(patched(&|b| set32(b, 20, 0)).contains("tensors"));
    assert!(patched(&|b| set32(b, 20, 1000)).contains("fc/kernel"));
    assert!(patched(&|b| set64(b, 56, 1)).contains("fingerprint"));
    assert!(patched(&|b| set32(b, rec(5, 8), 99)).contains("layout id 99"));
    // The fingerprint covers the layouts the table names: a layer switched to
    // another valid layout (direct, id 1, which the file does not use) is
    // refused as packed differently, before its length is compared.
    let m = patched(&|b| set32(b, rec(5, 8), 1));
    assert!(m.contains("fingerprint") && m.contains("re-run `resnet50 convert`"), "{m}");
    assert!(patched(&|b| set32(b, rec(5, 20), 65)).contains("does not match"));
    assert!(patched(&|b| set64(b, rec(5, 48), 1 << 40)).contains("past the end"));
    assert!(patched(&|b| set64(b, rec(5, 48), 64 * 1000 + 4)).contains("aligned"));
    let m = patched(&|b| {
        let other = u64::from_le_bytes(b[rec(4, 48)..rec(4, 48) + 8].try_into().unwrap());
        set64(b, rec(5, 48), other);
    });
    assert!(m.contains("overlaps"), "{m}");
    assert!(patched(&|b| set32(b, rec(5, 12), 5)).contains("conv2_block2_1"));
    // Inside the data, a Winograd layer's header is what its kernel trusts
    // (tile, channels, stride): a wrong one is refused at open, not at run.
    let winograd = (0..53).find(|&r| {
        let id = u32::from_le_bytes(good[rec(r, 8)..rec(r, 8) + 4].try_into().unwrap());
        matches!(id, 3 | 5..=8)
    });
    let r = winograd.expect("the native file has Winograd layers");
    let off = u64::from_le_bytes(good[rec(r, 48)..rec(r, 48) + 8].try_into().unwrap()) as usize;
    let cout = u32::from_le_bytes(good[rec(r, 24)..rec(r, 24) + 4].try_into().unwrap()) as usize;
    let header = off + cout.next_multiple_of(16) * 4;
    for (field, v) in [(0, 3.0f32), (1, 17.0), (3, 2.0)] {
        let m = patched(&|b| b[header + 4 * field..header + 4 * field + 4].copy_from_slice(&v.to_le_bytes()));
        assert!(m.contains("Winograd header"), "field {field}: {m}");
    }
    // A 10-class native file where 1000 are asked.
    let p = write(dir, "ten.r50w", good);
    let e = ResNet50::new().weights(WeightsSource::File(p.clone())).build().unwrap_err().to_string();
    assert!(e.contains("10 classes") && e.contains("1000") && e.contains("ten.r50w"), "{e}");
}

#[test]
fn safetensors_tensor_problems_name_the_tensor() {
    let tmp = tmp();
    let dir = tmp.path();
    // Wrong shape.
    let mut t = tv_tensors();
    let x = t.iter_mut().find(|x| x.name == "layer2.0.conv1.weight").unwrap();
    x.shape = vec![128, 256, 1, 1, 1];
    let m = st_err(dir, "shape.safetensors", &t);
    assert!(
        m.contains("layer2.0.conv1.weight") && m.contains("[128, 256, 1, 1, 1]") && m.contains("[128, 256, 1, 1]"),
        "{m}"
    );
    // Missing tensor.
    let t: Vec<Tensor> = tv_tensors().into_iter().filter(|x| x.name != "layer3.2.bn2.running_var").collect();
    let m = st_err(dir, "missing.safetensors", &t);
    assert!(m.contains("layer3.2.bn2.running_var") && m.contains("missing"), "{m}");
    // Extra tensor.
    let mut t = tv_tensors();
    t.push(Tensor { name: "head.extra.weight".into(), shape: vec![3], data: vec![0.0; 3], dtype: Dtype::F32 });
    let m = st_err(dir, "extra.safetensors", &t);
    assert!(m.contains("head.extra.weight") && m.contains("not part of ResNet50"), "{m}");
    // A ResNet101-like file: layer3 has more than 6 blocks.
    let mut t = tv_tensors();
    for x in tv_tensors().into_iter().filter(|x| x.name.starts_with("layer3.5.")) {
        t.push(Tensor { name: x.name.replace("layer3.5.", "layer3.6."), ..x });
    }
    let m = st_err(dir, "r101.safetensors", &t);
    assert!(m.contains("layer3.6.") && m.contains("ResNet101"), "{m}");
    // NaN and Inf.
    for (v, what) in [(f32::NAN, "NaN"), (f32::INFINITY, "inf")] {
        let mut t = tv_tensors();
        t.iter_mut().find(|x| x.name == "layer4.1.bn3.weight").unwrap().data[7] = v;
        let m = st_err(dir, "nan.safetensors", &t);
        assert!(m.contains("layer4.1.bn3.weight") && m.contains("[7]") && m.contains(what), "{m}");
    }
    // Negative variance.
    let mut t = tv_tensors();
    t.iter_mut().find(|x| x.name == "bn1.running_var").unwrap().data[0] = -1.0;
    assert!(st_err(dir, "negvar.safetensors", &t).contains("bn1.running_var"));
    // Unsupported element type.
    let mut t = tv_tensors();
    t.iter_mut().find(|x| x.name == "fc.bias").unwrap().dtype = Dtype::I32;
    let m = st_err(dir, "dtype.safetensors", &t);
    assert!(m.contains("fc.bias") && m.contains("I32"), "{m}");
    // Classifier kernel and bias disagree.
    let mut t = tv_tensors();
    let b = t.iter_mut().find(|x| x.name == "fc.bias").unwrap();
    b.shape = vec![9];
    b.data.truncate(9);
    let m = st_err(dir, "fc.safetensors", &t);
    assert!(m.contains("fc.weight") || m.contains("fc.bias"), "{m}");
    // Not ResNet50 names at all.
    let t = vec![Tensor { name: "encoder.weight".into(), shape: vec![2], data: vec![1.0, 2.0], dtype: Dtype::F32 }];
    assert!(st_err(dir, "other.safetensors", &t).contains("not those of a ResNet50"));
    // A 10-class file where 1000 classes are asked.
    let p = write(dir, "ten.safetensors", tv_bytes());
    let e =
        ResNet50::new().variant(Variant::V1_5).weights(WeightsSource::File(p.clone())).build().unwrap_err().to_string();
    assert!(e.contains("10 classes") && e.contains("1000") && e.contains("ten.safetensors"), "{e}");
}

#[test]
fn keras_h5_problems_name_the_tensor() {
    let tmp = tmp();
    let dir = tmp.path();
    // Wrong shape.
    let mut l = h5_layers();
    let t = &mut l.iter_mut().find(|x| x.name == "conv3_block1_0_conv").unwrap().weights[0];
    t.shape = vec![1, 1, 128, 1024];
    let m = h5_err(dir, "shape.h5", &l);
    assert!(m.contains("/conv3_block1_0_conv/conv3_block1_0_conv/kernel:0") && m.contains("[1, 1, 256, 512]"), "{m}");
    // Missing layer.
    let l: Vec<H5Layer> = h5_layers().into_iter().filter(|x| x.name != "conv4_block2_2_bn").collect();
    let m = h5_err(dir, "missing.h5", &l);
    assert!(m.contains("conv4_block2_2_bn") && m.contains("missing"), "{m}");
    // ResNet101-like: an extra block in stage 4.
    let mut l = h5_layers();
    for x in h5_layers().into_iter().filter(|x| x.name.starts_with("conv4_block6_")) {
        let rename = |s: &str| s.replace("conv4_block6_", "conv4_block7_");
        let weights = x.weights.iter().map(|t| Tensor { name: rename(&t.name), ..t.clone() }).collect();
        l.push(H5Layer { name: rename(&x.name), keras_name: rename(&x.keras_name), weights });
    }
    let m = h5_err(dir, "r101.h5", &l);
    assert!(m.contains("conv4_block7_") && m.contains("ResNet101"), "{m}");
    // NaN.
    let mut l = h5_layers();
    l.iter_mut().find(|x| x.name == "conv5_block3_3_bn").unwrap().weights[3].data[2] = f32::NAN;
    let m = h5_err(dir, "nan.h5", &l);
    assert!(m.contains("conv5_block3_3_bn/moving_variance:0") && m.contains("NaN"), "{m}");
    // Integer dataset.
    let mut l = h5_layers();
    l.iter_mut().find(|x| x.name == "conv1_bn").unwrap().weights[0].dtype = Dtype::I64;
    let m = h5_err(dir, "int.h5", &l);
    assert!(m.contains("conv1_bn/gamma:0") && m.contains("element type"), "{m}");
    // An HDF5 file that is not Keras weights.
    let mut fb = hdf5_pure::FileBuilder::new();
    fb.create_dataset("x").with_f32_data(&[1.0, 2.0]);
    let p = write(dir, "plain.h5", &fb.finish().unwrap());
    assert!(open_err(&p).contains("not Keras weights"));
}

#[test]
fn pytorch_checkpoint_problems_name_the_member_or_tensor() {
    let tmp = tmp();
    let dir = tmp.path();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torch");
    let err_of = |name: &str, bytes: &[u8]| -> String {
        let p = write(dir, name, bytes);
        let m = open_err(&p);
        std::fs::remove_file(p).unwrap();
        m
    };
    // A pickled module is not a state dict; the legacy format is read (then
    // its names, which are not ResNet50's, are refused).
    let m = open_err(&fixtures.join("module.pth"));
    assert!(m.contains("torch.nn.modules.linear.Linear") && m.contains("torch.save(model.state_dict()"), "{m}");
    let m = open_err(&fixtures.join("legacy.pth"));
    assert!(m.contains("PyTorch checkpoint tensor names are not those of a ResNet50"), "{m}");
    let legacy = std::fs::read(fixtures.join("legacy_wrapped.pth")).unwrap();
    let m = err_of("legacy-cut.pth", &legacy[..legacy.len() - 3]);
    assert!(m.contains("runs past the end of the file"), "{m}");
    // Other pickles, and the 2017 tar format, are named.
    let m = err_of("other.pkl", b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01.");
    assert!(m.contains("bare Python pickle"), "{m}");
    let mut tar = b"storages".to_vec();
    tar.resize(600, 0);
    assert!(err_of("old.pth", &tar).contains("2017 tar format"));
    // A zip that is neither a checkpoint nor a .keras model; a .keras model
    // whose weights are damaged.
    let m = err_of("other.zip", &zip_of(&[("config.json", b"{}"), ("notes.txt", b"")]));
    assert!(m.contains("neither a data.pkl") && m.contains("model.weights.h5") && m.contains("notes.txt"), "{m}");
    let m = err_of("model.keras", &zip_of(&[("config.json", b"{}"), ("model.weights.h5", &h5_bytes()[..5000])]));
    assert!(m.contains("model.keras") && (m.contains("truncated") || m.contains("corrupt")), "{m}");
    // A tensor of the wrong element type is named with its storage class.
    let mut t = tv_tensors();
    t.iter_mut().find(|x| x.name == "fc.bias").unwrap().dtype = Dtype::I32;
    let m = err_of("dtype.pth", &export::pytorch_bytes(&t).unwrap());
    assert!(m.contains("fc.bias") && m.contains("torch.IntStorage"), "{m}");
    // Members: a storage missing, a storage shorter than its tensor.
    let small = vec![
        Tensor { name: "conv1.weight".into(), shape: vec![2, 2], data: vec![1.0, 2.0, 3.0, 4.0], dtype: Dtype::F32 },
        Tensor { name: "bn1.running_var".into(), shape: vec![2], data: vec![1.0, 1.0], dtype: Dtype::F32 },
    ];
    let pkl = export::pytorch_pickle(&small);
    let m = err_of("nostorage.pth", &zip_of(&[("archive/data.pkl", &pkl), ("archive/data/1", &[0u8; 8])]));
    assert!(m.contains("conv1.weight") && m.contains("archive/data/0"), "{m}");
    let m = err_of("short.pth", &zip_of(&[("archive/data.pkl", &pkl), ("archive/data/0", &[0u8; 12])]));
    assert!(m.contains("conv1.weight") && m.contains("holds 3 elements") && m.contains("says 4"), "{m}");
    // Big-endian storages.
    let m = err_of("big.pth", &zip_of(&[("archive/data.pkl", &pkl), ("archive/byteorder", b"big")]));
    assert!(m.contains("big") && m.contains("little-endian"), "{m}");
    // A pickle that is not a state dict, or a dict without tensors.
    let m = err_of("list.pth", &zip_of(&[("archive/data.pkl", b"\x80\x02]K\x01a.")]));
    assert!(m.contains("holds a list, not a state dict"), "{m}");
    let m = err_of("epoch.pth", &zip_of(&[("archive/data.pkl", b"\x80\x02}X\x05\x00\x00\x00epochK\x03s.")]));
    assert!(m.contains("without tensors"), "{m}");
    // A damaged pickle: the member and the byte are named.
    let m = err_of("badpkl.pth", &zip_of(&[("archive/data.pkl", &pkl[..pkl.len() / 2])]));
    assert!(m.contains("archive/data.pkl") && m.contains("pickle byte"), "{m}");
    // A compressed member (torch never compresses): method 8 patched into
    // data.pkl's local and central headers.
    let mut z = zip_of(&[("archive/data.pkl", &pkl)]);
    z[8] = 8;
    let central = z.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
    z[central + 10] = 8;
    let m = err_of("deflated.pth", &z);
    assert!(m.contains("compressed"), "{m}");
    // A key twice in the state dict (torch never writes one; a pickle can).
    let mut t = tv_tensors();
    let again = t.iter().find(|x| x.name == "layer1.0.bn1.bias").unwrap().clone();
    t.push(again);
    let m = err_of("twice.pth", &export::pytorch_bytes(&t).unwrap());
    assert!(m.contains("layer1.0.bn1.bias") && m.contains("already provided"), "{m}");
    // The rest of the mapping is shared with safetensors: one case here.
    let t: Vec<Tensor> = tv_tensors().into_iter().filter(|x| x.name != "layer3.2.bn2.running_var").collect();
    let m = err_of("missing.pth", &export::pytorch_bytes(&t).unwrap());
    assert!(m.contains("layer3.2.bn2.running_var") && m.contains("missing"), "{m}");
}

/// An ONNX graph that is not ResNet50's — a stride, a padding, an op, a
/// consumer, a weight that is computed or stored elsewhere — is refused
/// naming the node or tensor and what ResNet50 has there; nothing that
/// computes another network loads.
#[test]
fn onnx_graph_problems_name_the_node() {
    let err = |m: &OnnxModel| match onnx::from_bytes(Path::new("g.onnx"), &m.to_bytes()) {
        Ok(_) => panic!("should not load"),
        Err(e) => {
            assert!(matches!(e, Error::Weights(_)), "{e:?}");
            e.to_string()
        }
    };
    let named = |m: &OnnxModel, name: &str| m.nodes.iter().position(|n| n.name == name).unwrap();
    let attr = |m: &mut OnnxModel, node: &str, key: &str, v: OnnxAttr| {
        let i = named(m, node);
        m.nodes[i].attrs.retain(|(k, _)| k != key);
        m.nodes[i].attrs.push((key.into(), v));
    };
    let good = onnx_model();
    let check = |m: &OnnxModel, wants: &[&str]| {
        let e = err(m);
        assert!(e.starts_with("weights: g.onnx: ") || e.contains("g.onnx"), "{e}");
        for w in wants {
            assert!(e.contains(w), "expected {w:?} in: {e}");
        }
    };
    // A stride neither variant has there; then v1.5's 3x3 stride moved to
    // its 1x1 in one block only (a mix of both variants).
    let mut m = good.clone();
    attr(&mut m, "/conv2_block2_2/Conv", "strides", OnnxAttr::Ints(vec![2, 2]));
    check(&m, &["neither ResNet50 v1's nor v1.5's", "conv2_block2_2 has stride 2"]);
    let mut m = good.clone();
    attr(&mut m, "/conv4_block1_2/Conv", "strides", OnnxAttr::Ints(vec![1, 1]));
    attr(&mut m, "/conv4_block1_1/Conv", "strides", OnnxAttr::Ints(vec![2, 2]));
    check(&m, &["neither ResNet50 v1's nor v1.5's", "conv3_block1_1 has stride 1 (v1: 2, v1.5: 1)"]);
    // Padding, group, dilation, kernel_shape.
    let mut m = good.clone();
    attr(&mut m, "/conv3_block2_2/Conv", "pads", OnnxAttr::Ints(vec![0, 0, 2, 2]));
    check(&m, &["/conv3_block2_2/Conv", "padding [0, 0, 2, 2]", "pads [1, 1, 1, 1]"]);
    let mut m = good.clone();
    attr(&mut m, "/conv3_block2_2/Conv", "auto_pad", OnnxAttr::Text("SAME_UPPER".into()));
    attr(&mut m, "/conv3_block2_2/Conv", "strides", OnnxAttr::Ints(vec![2, 2]));
    check(&m, &["auto_pad SAME_UPPER"]);
    let mut m = good.clone();
    attr(&mut m, "/conv5_block3_2/Conv", "group", OnnxAttr::Int(2));
    check(&m, &["conv5_block3_2", "group 2"]);
    let mut m = good.clone();
    attr(&mut m, "/conv1/Conv", "dilations", OnnxAttr::Ints(vec![2, 2]));
    check(&m, &["conv1", "dilations [2, 2]"]);
    let mut m = good.clone();
    attr(&mut m, "/maxpool/MaxPool", "pads", OnnxAttr::Ints(vec![0, 0, 1, 1]));
    check(&m, &["/maxpool/MaxPool", "not ResNet50's max-pool"]);
    // Another activation, an extra consumer, a residual add of the wrong values.
    let mut m = good.clone();
    let i = named(&m, "/conv2_block2_1/Relu");
    m.nodes[i].op = "Sigmoid".into();
    check(&m, &["feeds node \"/conv2_block2_1/Relu\" (Sigmoid)", "one Relu (after conv2_block2_1)"]);
    let mut m = good.clone();
    let mut extra = m.nodes[named(&m, "/conv3_block2/Relu")].clone();
    extra.name = "tap".into();
    extra.op = "Sigmoid".into();
    extra.outputs = vec!["tapped".into()];
    m.nodes.push(extra);
    check(
        &m,
        &["value \"conv3_block2/add\" feeds", "node \"tap\" (Sigmoid)", "one Relu (after conv3_block2's residual Add)"],
    );
    let mut m = good.clone();
    let i = named(&m, "/conv4_block3/Add");
    m.nodes[i].inputs[1] = m.nodes[i].inputs[0].clone();
    check(&m, &["value \"conv4_block2/out\" feeds", "conv4_block3's first 1x1 convolution and its residual Add"]);
    // A weight computed by the graph (no initializer), one in an external
    // file, one of the wrong shape or element type.
    let mut m = good.clone();
    m.initializers.retain(|t| t.name != "conv4_block2_2.weight");
    check(&m, &["conv4_block2_2.weight", "computed by the graph, not stored"]);
    let mut m = good.clone();
    m.external.push("conv2_block1_0.weight".into());
    check(&m, &["conv2_block1_0.weight", "external data file"]);
    let mut m = good.clone();
    let t = m.initializers.iter_mut().find(|t| t.name == "conv3_block4_3.weight").unwrap();
    t.shape = vec![512, 128, 1];
    check(&m, &["conv3_block4_3.weight", "has shape [512, 128, 1]", "conv3_block4_3/kernel needs [512, 128, 1, 1]"]);
    let mut m = good.clone();
    m.initializers.iter_mut().find(|t| t.name == "conv1.weight").unwrap().dtype = Dtype::I32;
    check(&m, &["conv1.weight", "element type int32"]);
    let mut m = good.clone();
    m.initializers.iter_mut().find(|t| t.name == "conv2_block3_2.bn.var").unwrap().data[5] = -1.0;
    check(&m, &["conv2_block3_2.bn.var", "negative"]);
    // Two BatchNorm ε in one graph; the last value not returned.
    let mut m = good.clone();
    attr(&mut m, "/conv5_block1_0/BN", "epsilon", OnnxAttr::Float(1e-3));
    check(&m, &["different epsilon", "/conv5_block1_0/BN"]);
    let mut m = good.clone();
    m.outputs = vec!["something-else".into()];
    check(&m, &["\"logits\"", "not a graph output"]);
    // Preprocessing inside the graph is not read.
    let mut m = good.clone();
    let i = named(&m, "/conv1/Conv");
    m.nodes[i].inputs[0] = "scaled".into();
    m.nodes.insert(0, OnnxNode::new("Mul", "", &["input", "conv1.weight"], &["scaled"], vec![]));
    check(&m, &["\"input\"", "(Mul)", "the stem convolution conv1"]);
    // A graph of ten times ResNet50's nodes is refused before it is walked…
    let mut m = good.clone();
    let filler = OnnxNode::new("Relu", "", &["nothing"], &["nowhere"], vec![]);
    m.nodes.extend(std::iter::repeat_n(filler, onnx::MAX_NODES));
    check(&m, &["more than 50000 nodes"]);
    // …and through the file loader, the message names the file.
    let tmp = tmp();
    let p = write(tmp.path(), "cut.onnx", &onnx_bytes()[..onnx_bytes().len() / 3]);
    let e = open_err(&p);
    assert!(e.contains("not a readable ONNX model") && e.contains("truncated"), "{e}");
}

/// Arbitrary damage to every format is an `Err` (or, rarely, a valid load),
/// never a panic.
#[test]
fn damaged_bytes_never_panic() {
    let name = Path::new("damaged");
    let mut seed = 0x1234_5678_9abc_def0u64;
    let mut next = || {
        seed = resnet50::init::splitmix64(seed);
        seed
    };
    for round in 0..10 {
        for (kind, good) in [(0, tv_bytes()), (1, h5_bytes()), (2, native_bytes()), (3, pth_bytes()), (4, onnx_bytes())]
        {
            let mut b = good.to_vec();
            // Damage the metadata-heavy start more often than the bulk data.
            for _ in 0..1 + round % 4 {
                let at = if next() % 2 == 0 { (next() % 4096) as usize } else { (next() % b.len() as u64) as usize };
                b[at] = next() as u8;
            }
            if round % 3 == 0 {
                b.truncate((next() % b.len() as u64) as usize);
            }
            let r = match kind {
                0 => st_loader::from_bytes(name, &b).map(|_| ()),
                1 => keras_h5::from_bytes(name, &b).map(|_| ()),
                2 => native::parse(name, &b).map(|_| ()),
                3 => pytorch::from_bytes(name, &b).map(|_| ()),
                _ => onnx::from_bytes(name, &b).map(|_| ()),
            };
            if let Err(e) = r {
                assert!(e.to_string().contains("damaged"), "{e}");
            }
        }
    }
}

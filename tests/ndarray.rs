//! The `ndarray` views (feature `ndarray`) give exactly what the slice API
//! gives, for every input layout, and refuse wrong shapes with both shapes named.
#![cfg(feature = "ndarray")]

use ndarray::{Array2, Array4, ArrayD, Axis, Ix2, IxDyn, ShapeBuilder};
use resnet50::{init, Error, Pooling, ResNet50, Variant};
use resnet50_kernels::alloc_count::CountingAllocator;

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator::new();

/// The allocation counter is global: the tests of this file run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn input(n: usize, h: usize, w: usize) -> Array4<f32> {
    Array4::from_shape_vec((n, h, w, 3), init::deterministic_input(n, h, w)).unwrap()
}

#[test]
fn views_match_the_slice_api_in_every_layout() {
    let _serial = serial();
    let model = ResNet50::new().variant(Variant::V1_5).input_shape(40, 48, 3).classes(6).batch(2).build().unwrap();
    let mut s = model.session().unwrap();
    let x = input(2, 40, 48);
    let expected = s.predict(x.as_slice().unwrap()).unwrap().to_vec();

    // Standard layout.
    let y = s.predict_array(x.view()).unwrap();
    assert_eq!(y.shape(), &[2, 6]);
    assert_eq!(y.as_slice().unwrap(), &expected[..]);

    // The same values stored NCHW and seen as NHWC (non-standard strides).
    let nchw = x.view().permuted_axes([0, 3, 1, 2]).as_standard_layout().into_owned();
    let view = nchw.view().permuted_axes([0, 2, 3, 1]);
    assert!(!view.is_standard_layout());
    assert_eq!(s.predict_array(view).unwrap().as_slice().unwrap(), &expected[..]);

    // Fortran order, and a view with negative strides (batch reversed).
    let f = {
        let mut f = Array4::zeros((2, 40, 48, 3).f());
        f.assign(&x);
        f
    };
    assert_eq!(s.predict_array(f.view()).unwrap().as_slice().unwrap(), &expected[..]);
    let mut reversed = x.clone();
    reversed.invert_axis(Axis(0));
    let twice_reversed = {
        let mut r = reversed.view();
        r.invert_axis(Axis(0));
        r
    };
    assert_eq!(s.predict_array(twice_reversed).unwrap().as_slice().unwrap(), &expected[..]);

    // A strided slice of a bigger array.
    let mut big = Array4::<f32>::from_elem((2, 80, 48, 3), f32::NAN);
    big.slice_mut(ndarray::s![.., ..;2, .., ..]).assign(&x);
    let strided = big.slice(ndarray::s![.., ..;2, .., ..]);
    assert_eq!(s.predict_array(strided).unwrap().as_slice().unwrap(), &expected[..]);

    // predict_into_array: 2-D, dynamic and transposed (non-contiguous) outputs.
    let mut out = Array2::<f32>::zeros((2, 6));
    s.predict_into_array(x.view(), out.view_mut()).unwrap();
    assert_eq!(out.as_slice().unwrap(), &expected[..]);
    let mut dynamic = ArrayD::<f32>::zeros(IxDyn(&[2, 6]));
    s.predict_into_array(view, dynamic.view_mut()).unwrap();
    assert_eq!(dynamic.as_slice().unwrap(), &expected[..]);
    let mut transposed = Array2::<f32>::zeros((6, 2));
    s.predict_into_array(x.view(), transposed.view_mut().reversed_axes()).unwrap();
    assert_eq!(transposed.t().as_standard_layout().as_slice().unwrap(), &expected[..]);
}

#[test]
fn four_d_output_and_feature_maps_match_slices() {
    let _serial = serial();
    let model = ResNet50::new()
        .include_top(false)
        .pooling(Pooling::None)
        .input_shape(64, 96, 3)
        .feature_maps(true)
        .build()
        .unwrap();
    assert_eq!(model.output_shape(), &[1, 2, 3, 2048]);
    let mut s = model.session().unwrap();
    let x = input(1, 64, 96);
    let expected = s.predict(x.as_slice().unwrap()).unwrap().to_vec();
    let y = s.predict_array(x.view()).unwrap();
    assert_eq!(y.shape(), &[1, 2, 3, 2048]);
    assert_eq!(y.as_slice().unwrap(), &expected[..]);

    let arrays = s.feature_arrays().unwrap();
    let slices = s.features().unwrap();
    let dims = [(1, 16, 24, 256), (1, 8, 12, 512), (1, 4, 6, 1024), (1, 2, 3, 2048)];
    for ((a, (data, shape)), dim) in arrays.stages.iter().zip(slices.stages).zip(dims) {
        assert_eq!(a.dim(), dim);
        assert_eq!(a.shape(), &shape[..]);
        assert_eq!(a.as_slice().unwrap(), data);
    }
    assert_eq!(arrays.embedding.dim(), (1, 2048));
    assert_eq!(arrays.embedding.as_slice().unwrap(), slices.embedding);
    // The embedding is the spatial mean of C5.
    let mean = arrays.stages[3].mean_axis(Axis(1)).unwrap().mean_axis(Axis(1)).unwrap();
    for (a, b) in mean.iter().zip(arrays.embedding.iter()) {
        assert!((a - b).abs() <= 1e-4 * a.abs().max(1.0), "{a} vs {b}");
    }
    // Without feature maps there are none.
    let plain = ResNet50::new().input_shape(32, 32, 3).classes(2).build().unwrap();
    assert!(plain.session().unwrap().feature_arrays().is_none());
}

#[test]
fn wrong_shapes_and_values_are_typed_errors() {
    let _serial = serial();
    let model = ResNet50::new().input_shape(32, 48, 3).classes(3).build().unwrap();
    let mut s = model.session().unwrap();
    let msg = |e: Error| match e {
        Error::Input(m) => m,
        other => panic!("expected Error::Input, got {other:?}"),
    };
    let wrong = Array4::<f32>::zeros((1, 48, 32, 3));
    let m = msg(s.predict_array(wrong.view()).unwrap_err());
    assert!(m.contains("[1, 32, 48, 3]") && m.contains("got [1, 48, 32, 3]"), "{m}");
    let nchw = Array4::<f32>::zeros((1, 3, 32, 48));
    let m = msg(s.predict_array(nchw.view()).unwrap_err());
    assert!(m.contains("got [1, 3, 32, 48]") && m.contains("NCHW"), "{m}");
    let batch2 = Array4::<f32>::zeros((2, 32, 48, 3));
    assert!(msg(s.predict_array(batch2.view()).unwrap_err()).contains("got [2, 32, 48, 3]"));

    let x = Array4::<f32>::zeros((1, 32, 48, 3));
    let mut out = Array2::<f32>::from_elem((1, 4), 7.0);
    let m = msg(s.predict_into_array(x.view(), out.view_mut()).unwrap_err());
    assert!(m.contains("[1, 4]") && m.contains("[1, 3]"), "{m}");
    assert!(out.iter().all(|&v| v == 7.0), "out must be left untouched");

    // Non-finite values are found in non-standard views too, at their NHWC index.
    let mut nan = Array4::<f32>::zeros((1, 3, 32, 48));
    nan[[0, 1, 0, 2]] = f32::INFINITY; // NHWC [0, 0, 2, 1] = index 2*3+1
    let m = msg(s.predict_array(nan.view().permuted_axes([0, 2, 3, 1])).unwrap_err());
    assert!(m.contains("input[7]") && m.contains("inf"), "{m}");
}

#[test]
fn array_predict_allocates_nothing() {
    let _serial = serial();
    let model = ResNet50::new().input_shape(32, 32, 3).classes(5).build().unwrap();
    let mut s = model.session().unwrap();
    let x = input(1, 32, 32);
    let nchw = x.view().permuted_axes([0, 3, 1, 2]).as_standard_layout().into_owned();
    let mut out = Array2::<f32>::zeros((1, 5));
    s.predict_array(x.view()).unwrap();
    let n = GLOBAL.during(|| {
        for _ in 0..2 {
            let y = s.predict_array(x.view()).unwrap();
            assert_eq!(y.view().into_dimensionality::<Ix2>().unwrap().dim(), (1, 5));
            s.predict_array(nchw.view().permuted_axes([0, 2, 3, 1])).unwrap();
            s.predict_into_array(x.view(), out.view_mut()).unwrap();
        }
    });
    assert_eq!(n, 0, "array predict allocated {n} times");
    assert!((out.sum() - 1.0).abs() < 1e-4);
}

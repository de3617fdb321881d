//! Keras' refusals (and ours) are typed errors with the offending value.

use resnet50::{Error, Pooling, ResNet50, WeightsSource};

fn err(b: ResNet50) -> String {
    match b.build() {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn keras_validation_rules() {
    assert!(err(ResNet50::new().input_shape(224, 224, 1)).contains("3 channels, got 1"));
    assert!(err(ResNet50::new().input_shape(31, 224, 3)).contains("at least 32x32, got 31x224"));
    assert!(err(ResNet50::new().weights(WeightsSource::Imagenet).classes(10)).contains("classes must be 1000, got 10"));
    assert!(
        err(ResNet50::new().weights(WeightsSource::Imagenet).input_shape(256, 256, 3)).contains("224x224, got 256x256")
    );
    assert!(err(ResNet50::new().classes(0)).contains("classes"));
    assert!(err(ResNet50::new().batch(0)).contains("batch"));
    assert!(err(ResNet50::new().threads(0)).contains("threads"));
    assert!(err(ResNet50::new().bn_epsilon(-1.0)).contains("epsilon"));
    assert!("mean".parse::<Pooling>().unwrap_err().to_string().contains("\"mean\""));
}

#[test]
fn absurd_sizes_fail_fast() {
    let e = err(ResNet50::new().include_top(false).input_shape(100_000, 100_000, 3));
    assert!(e.contains("100000x100000"), "{e}");
}

#[test]
fn imagenet_is_a_clear_error_until_available() {
    match ResNet50::new().weights(WeightsSource::Imagenet).build() {
        Err(Error::NotAvailable(m)) | Err(Error::Weights(m)) => {
            assert!(m.contains("imagenet") || m.contains("resnet50"))
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => {} // the weights were found in a local cache
    }
}

#[test]
fn wrong_input_is_an_error_not_a_panic() {
    let model = ResNet50::new().input_shape(32, 32, 3).classes(3).build().unwrap();
    let mut s = model.session().unwrap();
    assert!(s.predict(&[0.0; 10]).unwrap_err().to_string().contains("expected 3072 values"));
    let mut x = vec![0.0; 3072];
    x[5] = f32::NAN;
    assert!(s.predict(&x).unwrap_err().to_string().contains("input[5]"));
    let mut out = vec![0.0; 4];
    assert!(s.predict_into(&[0.0; 3072], &mut out).is_err());
}

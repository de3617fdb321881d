//! [`ndarray`] views in and out of a [`Session`] (cargo feature `ndarray`,
//! off by default).
//!
//! Inputs are [`ArrayView4`]s in NHWC order, `[batch, height, width, 3]`
//! ([`Model::input_shape`]). Any memory layout is accepted: a standard
//! (C-order) view is copied into the session's arena with one `memcpy`; any
//! other view (transposed, sliced with steps, negative strides — e.g. an NCHW
//! array seen as NHWC through `.permuted_axes([0, 2, 3, 1])`) is copied
//! element by element in NHWC order into the same place. The input is copied
//! into the arena in every case, so neither path allocates: predict stays
//! allocation-free. Outputs are views borrowed from the arena, in the shape
//! [`Model::output_shape`] gives (2-D `[n, classes]` or `[n, 2048]`, or 4-D
//! `[n, h, w, 2048]` without top and pooling), hence [`ArrayViewD`].
//!
//! ```
//! use ndarray::{Array4, Ix2};
//! use resnet50::ResNet50;
//! let model = ResNet50::new().input_shape(32, 32, 3).classes(10).build()?;
//! let mut session = model.session()?;
//! let nchw = Array4::<f32>::from_shape_fn((1, 3, 32, 32), |(_, c, y, x)| (c + y + x) as f32 / 64.0);
//! let probs = session.predict_array(nchw.view().permuted_axes([0, 2, 3, 1]))?;
//! let probs = probs.into_dimensionality::<Ix2>().unwrap();
//! assert_eq!(probs.dim(), (1, 10));
//! assert!((probs.sum() - 1.0).abs() < 1e-4);
//! # Ok::<(), resnet50::Error>(())
//! ```

use ndarray::{ArrayView2, ArrayView4, ArrayViewD, ArrayViewMut, Dimension, IxDyn};

use crate::error::{Error, Result};
use crate::model::{Model, Session};

/// The backbone outputs of a [`Session`]'s last run as [`ndarray`] views (see
/// [`Session::feature_arrays`]).
///
/// ```
/// use ndarray::{Array4, Axis};
/// use resnet50::ResNet50;
/// let model = ResNet50::new().input_shape(64, 64, 3).classes(3).feature_maps(true).build()?;
/// let mut session = model.session()?;
/// session.predict_array(Array4::<f32>::from_elem((1, 64, 64, 3), 0.5).view())?;
/// let f: resnet50::FeatureArrays = session.feature_arrays().unwrap();
/// // The embedding is the global average pool of C5.
/// let pooled = f.stages[3].mean_axis(Axis(1)).unwrap().mean_axis(Axis(1)).unwrap();
/// assert!(pooled.iter().zip(&f.embedding).all(|(a, b)| (a - b).abs() <= 1e-4 * (1.0 + b.abs())));
/// # Ok::<(), resnet50::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct FeatureArrays<'a> {
    /// C2…C5, the outputs of conv2_x…conv5_x, NHWC (`[n, h/4, w/4, 256]` …
    /// `[n, h/32, w/32, 2048]`, sides rounded up).
    pub stages: [ArrayView4<'a, f32>; 4],
    /// Global average pool of C5, `[n, 2048]`.
    pub embedding: ArrayView2<'a, f32>,
}

/// The error for an input array of the wrong shape, naming both shapes.
fn shape_error(model: &Model, given: &[usize]) -> Error {
    let expected = model.input_shape();
    let [n, h, w, c] = expected;
    let hint =
        if given == [n, c, h, w] { " (this looks like NCHW: pass `.permuted_axes([0, 2, 3, 1])` of it)" } else { "" };
    Error::Input(format!("expected an NHWC input array of shape {expected:?}, got {given:?}{hint}"))
}

impl Session {
    /// Copies `input` into the arena (any layout, no allocation), checks it.
    fn run_array(&mut self, input: &ArrayView4<'_, f32>) -> Result<()> {
        if input.shape() != self.model().input_shape() {
            return Err(shape_error(self.model(), input.shape()));
        }
        match input.as_slice() {
            Some(s) => self.run_with(|dst| dst.copy_from_slice(s), None),
            None => self.run_with(|dst| dst.iter_mut().zip(input.iter()).for_each(|(d, &v)| *d = v), None),
        }
    }

    /// The output of the last run as a view of shape [`Model::output_shape`].
    fn output_array(&self) -> Result<ArrayViewD<'_, f32>> {
        ArrayViewD::from_shape(IxDyn(self.model().output_shape()), self.output())
            .map_err(|e| Error::Input(format!("output view: {e}")))
    }

    /// [`Session::predict`] on an NHWC array view of shape
    /// [`Model::input_shape`], in any memory layout (see the [module
    /// docs](crate::array)); returns a view of the output borrowed from the
    /// arena, of shape [`Model::output_shape`]. Allocates nothing. A wrong
    /// shape is [`Error::Input`] naming the expected and the given shape.
    ///
    /// ```
    /// use ndarray::Array4;
    /// use resnet50::{Pooling, ResNet50};
    /// let model = ResNet50::new().include_top(false).pooling(Pooling::None).input_shape(64, 32, 3).build()?;
    /// let mut session = model.session()?;
    /// let x = Array4::<f32>::zeros((1, 64, 32, 3));
    /// assert_eq!(session.predict_array(x.view())?.shape(), &[1, 2, 1, 2048]);
    /// let wrong = Array4::<f32>::zeros((1, 32, 64, 3));
    /// let err = session.predict_array(wrong.view()).unwrap_err();
    /// assert!(err.to_string().contains("shape [1, 64, 32, 3], got [1, 32, 64, 3]"), "{err}");
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn predict_array(&mut self, input: ArrayView4<'_, f32>) -> Result<ArrayViewD<'_, f32>> {
        self.run_array(&input)?;
        self.output_array()
    }

    /// Like [`Session::predict_array`], writing the output into `out`, whose
    /// shape must equal [`Model::output_shape`] (any dimensionality type, any
    /// layout). Allocates nothing. A wrong shape is [`Error::Input`] naming
    /// both shapes; `out` is then left untouched.
    ///
    /// ```
    /// use ndarray::{Array2, Array4};
    /// use resnet50::{Pooling, ResNet50};
    /// let model = ResNet50::new().include_top(false).pooling(Pooling::Avg).input_shape(32, 32, 3).batch(2).build()?;
    /// let mut session = model.session()?;
    /// let x = Array4::<f32>::from_elem((2, 32, 32, 3), 0.5);
    /// let mut out = Array2::<f32>::zeros((2, 2048));
    /// session.predict_into_array(x.view(), out.view_mut())?;
    /// assert_eq!(out.as_slice().unwrap(), session.predict(x.as_slice().unwrap())?);
    /// let mut wrong = Array2::<f32>::zeros((2048, 2));
    /// assert!(session.predict_into_array(x.view(), wrong.view_mut()).is_err());
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn predict_into_array<D: Dimension>(
        &mut self,
        input: ArrayView4<'_, f32>,
        mut out: ArrayViewMut<'_, f32, D>,
    ) -> Result<()> {
        if out.shape() != self.model().output_shape() {
            return Err(Error::Input(format!(
                "output array has shape {:?}, the model produces {:?}",
                out.shape(),
                self.model().output_shape()
            )));
        }
        self.run_array(&input)?;
        let y = self.output();
        match out.as_slice_mut() {
            Some(o) => o.copy_from_slice(y),
            None => out.iter_mut().zip(y).for_each(|(o, &v)| *o = v),
        }
        Ok(())
    }

    /// [`Session::features`] as [`ndarray`] views: C2…C5 as [`ArrayView4`]
    /// (NHWC) and the embedding as `[n, 2048]`. `None` unless the model was
    /// built with [`crate::ResNet50::feature_maps`].
    ///
    /// ```
    /// use ndarray::Array4;
    /// use resnet50::ResNet50;
    /// let model = ResNet50::new().input_shape(64, 64, 3).classes(3).feature_maps(true).build()?;
    /// let mut session = model.session()?;
    /// session.predict_array(Array4::<f32>::zeros((1, 64, 64, 3)).view())?;
    /// let f = session.feature_arrays().unwrap();
    /// assert_eq!(f.stages[0].dim(), (1, 16, 16, 256));
    /// assert_eq!(f.stages[3].dim(), (1, 2, 2, 2048));
    /// assert_eq!(f.embedding.dim(), (1, 2048));
    /// # Ok::<(), resnet50::Error>(())
    /// ```
    pub fn feature_arrays(&self) -> Option<FeatureArrays<'_>> {
        let f = self.features()?;
        let [a, b, c, d] = f.stages.map(|(data, shape)| ArrayView4::from_shape(shape, data).ok());
        let n = f.embedding.len() / crate::arch::FEATURES;
        Some(FeatureArrays {
            stages: [a?, b?, c?, d?],
            embedding: ArrayView2::from_shape((n, crate::arch::FEATURES), f.embedding).ok()?,
        })
    }
}

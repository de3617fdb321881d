//! The ImageNet-1k class index and Keras' `decode_predictions`.
//!
//! The index is Keras' own `imagenet_class_index.json` (md5 of its stripped
//! content `c2c37ea517e94d9795004a39431a14cb`, the hash Keras checks), embedded
//! in the crate and parsed once. Index `i` is the model's output `i`, for Keras
//! and torchvision alike. Names are not unique (`crane` is 134 and 517,
//! `maillot` 638 and 639): identify a class by its index or WordNet id, never by
//! name.

use std::sync::OnceLock;

use crate::error::{Error, Result};

/// The embedded file, byte for byte (sha256
/// `ecae206bed9024d38507c0c6a3f8c4dc079f465ad34e44c3ffd0ea5ddf6cfa50`).
///
/// ```
/// assert!(resnet50::imagenet::CLASS_INDEX_JSON.contains("\"n01440764\""));
/// ```
pub const CLASS_INDEX_JSON: &str = include_str!("data/imagenet_class_index.json");

/// Number of ImageNet-1k classes.
///
/// ```
/// assert_eq!(resnet50::imagenet::classes().len(), resnet50::imagenet::NUM_CLASSES);
/// ```
pub const NUM_CLASSES: usize = 1000;

/// One ImageNet class.
///
/// ```
/// let c = resnet50::imagenet::class(0).unwrap();
/// assert_eq!((c.wnid.as_str(), c.name.as_str()), ("n01440764", "tench"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Class {
    /// WordNet id, e.g. `n01440764`.
    pub wnid: String,
    /// Keras' human-readable name, e.g. `tench` (underscores, not unique).
    pub name: String,
}

/// One entry of [`decode_predictions`]: Keras' `(wnid, name, score)` plus the index.
///
/// ```
/// let mut scores = vec![0.0f32; 1000];
/// scores[1] = 0.9;
/// let p = &resnet50::imagenet::decode_predictions(&scores, 1000, 1)?[0][0];
/// assert_eq!((p.index, p.wnid, p.name, p.score), (1, "n01443537", "goldfish", 0.9));
/// # Ok::<(), resnet50::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// Class index (the model's output position).
    pub index: usize,
    /// WordNet id.
    pub wnid: &'static str,
    /// Class name.
    pub name: &'static str,
    /// The model's score for the class.
    pub score: f32,
}

/// The 1000 classes in index order, parsed from [`CLASS_INDEX_JSON`] on first use.
///
/// ```
/// let classes = resnet50::imagenet::classes();
/// assert_eq!(classes[999].name, "toilet_tissue");
/// ```
pub fn classes() -> &'static [Class] {
    static CLASSES: OnceLock<Vec<Class>> = OnceLock::new();
    CLASSES.get_or_init(|| parse_class_index(CLASS_INDEX_JSON).expect("the embedded ImageNet class index is valid"))
}

/// The class at `index`, if any.
///
/// ```
/// assert_eq!(resnet50::imagenet::class(1).unwrap().name, "goldfish");
/// assert!(resnet50::imagenet::class(1000).is_none());
/// ```
pub fn class(index: usize) -> Option<&'static Class> {
    classes().get(index)
}

/// Parses a Keras-style class index: a JSON object `{"0": [wnid, name], …}`
/// whose keys are exactly `"0"`…`"N-1"`.
///
/// ```
/// use resnet50::imagenet::parse_class_index;
/// let c = parse_class_index(r#"{"0": ["n1", "cat"], "1": ["n2", "dog"]}"#)?;
/// assert_eq!(c[1].name, "dog");
/// let err = parse_class_index(r#"{"0": ["n1", "cat"], "2": ["n2", "dog"]}"#).unwrap_err();
/// assert!(err.to_string().contains("\"2\""), "{err}");
/// # Ok::<(), resnet50::Error>(())
/// ```
pub fn parse_class_index(json: &str) -> Result<Vec<Class>> {
    let bad = |m: String| Error::Input(format!("ImageNet class index: {m}"));
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| bad(format!("not valid JSON: {e}")))?;
    let obj = v.as_object().ok_or_else(|| bad("expected a JSON object".into()))?;
    let mut out: Vec<Option<Class>> = vec![None; obj.len()];
    for (k, val) in obj {
        let i: usize = k.parse().map_err(|_| bad(format!("key {k:?} is not an index")))?;
        if i >= out.len() || out[i].is_some() || k != &i.to_string() {
            return Err(bad(format!("key {k:?} is out of range or repeated")));
        }
        let pair =
            val.as_array().filter(|a| a.len() == 2).ok_or_else(|| bad(format!("entry {k}: expected [wnid, name]")))?;
        let s = |j: usize| pair[j].as_str().map(str::to_owned).ok_or_else(|| bad(format!("entry {k}: not a string")));
        out[i] = Some(Class { wnid: s(0)?, name: s(1)? });
    }
    Ok(out.into_iter().map(|c| c.expect("every index 0..n present")).collect())
}

/// Order used for ranking: higher score first; NaN ranks above every number
/// (numpy's `argsort` puts NaN last, so Keras reports it first); exact ties go
/// to the larger index first, as Keras' `argsort()[-top:][::-1]` gives with a
/// stable sort.
fn rank(a: (usize, f32), b: (usize, f32)) -> std::cmp::Ordering {
    let key = |s: f32| (s.is_nan(), if s.is_nan() { 0.0 } else { s });
    let (ka, kb) = (key(a.1), key(b.1));
    kb.0.cmp(&ka.0).then(kb.1.total_cmp(&ka.1)).then(b.0.cmp(&a.0))
}

/// The `top` highest scores of one row as `(index, score)`, best first
/// (ties: larger index first; `top` larger than the row gives the whole row).
///
/// ```
/// let top = resnet50::imagenet::top_k(&[0.1, 0.7, 0.2, 0.7], 3);
/// assert_eq!(top, [(3, 0.7), (1, 0.7), (2, 0.2)]); // ties: larger index first
/// ```
pub fn top_k(row: &[f32], top: usize) -> Vec<(usize, f32)> {
    let mut idx: Vec<(usize, f32)> = row.iter().copied().enumerate().collect();
    idx.sort_by(|&a, &b| rank(a, b));
    idx.truncate(top);
    idx
}

/// Keras' `decode_predictions(preds, top)`: for each row of `scores` (a
/// row-major `[N, classes]` array), the `top` classes with the highest scores,
/// highest first, with their WordNet id and name.
///
/// As in Keras, `classes` must be 1000. Keras sorts with numpy's default
/// (unstable) `argsort`, so its order among exactly equal scores is
/// unspecified; here ties are broken deterministically, larger index first
/// (what Keras gives with `argsort(kind="stable")`). NaN scores rank first.
///
/// ```
/// use resnet50::imagenet::decode_predictions;
/// let mut scores = vec![0.0f32; 2 * 1000]; // two images
/// scores[207] = 0.8; // golden retriever
/// scores[1000 + 281] = 0.6; // tabby
/// let rows = decode_predictions(&scores, 1000, 2)?;
/// assert_eq!(rows[0][0].name, "golden_retriever");
/// assert_eq!(rows[1][0].name, "tabby");
/// assert!(decode_predictions(&scores, 10, 2).is_err()); // Keras' (samples, 1000) rule
/// # Ok::<(), resnet50::Error>(())
/// ```
pub fn decode_predictions(scores: &[f32], classes: usize, top: usize) -> Result<Vec<Vec<Prediction>>> {
    if classes != NUM_CLASSES || !scores.chunks_exact(NUM_CLASSES).remainder().is_empty() {
        return Err(Error::Input(format!(
            "decode_predictions expects a batch of predictions of shape (samples, 1000); got {} values with {classes} classes",
            scores.len()
        )));
    }
    let table = self::classes();
    Ok(scores
        .chunks_exact(NUM_CLASSES)
        .map(|row| {
            top_k(row, top)
                .into_iter()
                .map(|(index, score)| Prediction { index, wnid: &table[index].wnid, name: &table[index].name, score })
                .collect()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_index_is_keras_file() {
        let c = classes();
        assert_eq!(c.len(), 1000);
        assert_eq!((c[0].wnid.as_str(), c[0].name.as_str()), ("n01440764", "tench"));
        assert_eq!((c[999].wnid.as_str(), c[999].name.as_str()), ("n15075141", "toilet_tissue"));
        assert_eq!(c[386].name, "African_elephant");
        assert_eq!(c[101].name, "tusker");
        // Names repeat; wnids are unique and ascending.
        assert_eq!(c[134].name, "crane");
        assert_eq!(c[517].name, "crane");
        assert_eq!(c[638].name, c[639].name);
        assert!(c.windows(2).all(|w| w[0].wnid < w[1].wnid));
        assert_eq!(CLASS_INDEX_JSON.len(), 35_366);
    }

    #[test]
    fn decode_like_keras() {
        let mut s = vec![0.0f32; 2000];
        s[386] = 0.8;
        s[101] = 0.15;
        s[385] = 0.05;
        s[1000 + 7] = 1.0;
        let d = decode_predictions(&s, 1000, 3).unwrap();
        assert_eq!(d.len(), 2);
        let r: Vec<_> = d[0].iter().map(|p| (p.index, p.wnid, p.name, p.score)).collect();
        assert_eq!(
            r,
            vec![
                (386, "n02504458", "African_elephant", 0.8),
                (101, "n01871265", "tusker", 0.15),
                (385, "n02504013", "Indian_elephant", 0.05)
            ]
        );
        // Ties (all the zeros): larger index first.
        assert_eq!(d[1][0].index, 7);
        assert_eq!(d[1][1].index, 999);
        assert_eq!(d[1][2].index, 998);
        assert!(decode_predictions(&s, 10, 3).is_err());
        assert!(decode_predictions(&s[..1500], 1000, 3).is_err());
        // top beyond the classes gives them all.
        assert_eq!(decode_predictions(&s[..1000], 1000, 5000).unwrap()[0].len(), 1000);
    }

    #[test]
    fn nan_ranks_first_and_bad_index_is_refused() {
        let r = top_k(&[0.1, f32::NAN, 0.5, -1.0], 4);
        assert_eq!(r.iter().map(|p| p.0).collect::<Vec<_>>(), vec![1, 2, 0, 3]);
        assert!(parse_class_index("[1]").is_err());
        assert!(parse_class_index(r#"{"0": ["a", "b"], "2": ["c", "d"]}"#).is_err());
        assert!(parse_class_index(r#"{"0": ["a"]}"#).is_err());
        assert_eq!(parse_class_index(r#"{"1": ["c", "d"], "0": ["a", "b"]}"#).unwrap()[1].name, "d");
    }
}

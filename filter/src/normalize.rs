//! Istio's path normalization options, applied before path matching.

/// Istio `meshConfig.pathNormalization.normalization` options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum PathNormalization {
    None,
    #[default]
    Base,
    MergeSlashes,
    DecodeAndMergeSlashes,
}

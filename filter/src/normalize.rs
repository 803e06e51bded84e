//! Istio's path normalization options, applied before path matching.

//! Kubernetes integration: the `LoadTest` custom resource that agents watch
//! and report into.
//!
//! kube-rs and k8s-openapi are used only under this module, so the rest of
//! Volley stays free of the Kubernetes API types.

pub mod crd;
pub mod quantity;

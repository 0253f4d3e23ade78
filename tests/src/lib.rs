//! Shared helpers of the integration tests: root checks, network namespaces
//! that clean up after themselves, and the BPF object's location.

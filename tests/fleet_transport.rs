//! Fleet transport tests: one conformance suite run against both `QuicTransport` (loopback,
//! mutual TLS) and `MemoryTransport`, the mTLS refusals, raw-protocol robustness of the QUIC
//! server, and memory-network partitions.

mod fleet_transport {
    pub mod conformance;
    pub mod memory;
    pub mod mtls;
    pub mod raw;
    pub mod support;
}

//! Table-driven tests of the open-firewall policy.

//! Command implementations that only the `antibody` binary uses.

pub mod state;

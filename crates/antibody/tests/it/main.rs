//! Integration tests: sandbox and engine in-process over real HTTP on 127.0.0.1, with a temp SQLite journal.

mod auth;
mod bucket;
mod cli;
mod faults;
mod firewall;
mod fixtures;
mod harness;
mod notify;
mod plan;
mod project_iam;
mod push_auth;
mod safety;
mod scan;
mod undo;

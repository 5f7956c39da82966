//! Integration tests: sandbox and engine over real HTTP on 127.0.0.1, with a temp SQLite journal or a throwaway
//! PostgreSQL cluster.

mod audit_config;
mod auth;
mod bucket;
mod cli;
mod contract;
mod crashes;
mod dataset;
mod delivery;
mod enforced;
mod faults;
mod firewall;
mod fixtures;
mod folders;
mod harness;
mod hostile;
mod live;
mod log_routing;
mod notify;
mod organization;
mod pg;
mod plan;
mod plan_organization;
mod processes;
mod project_iam;
mod public_iam;
mod push_auth;
mod replicas;
mod sa_key;
mod safety;
mod scan;
mod sql_instance;
mod tidy;
mod undo;
mod vm;

//! The Ferrum master: the Raft-replicated cluster manager (nodes, volumes, partitions, placement),
//! its admin HTTP API, and the admin CLI that `ferrum` dispatches to.
//!
//! - [`state`]: the replicated state and its commands; [`app`]: the Raft [`ferrum_raftstore::App`].
//! - [`bootstrap`]: this master's identity in the master group; [`server`]: starting a master.
//! - [`service`]: what the leader serves, and its background work (creation, deletion, growth).
//! - [`liveness`], [`resources`], [`placement`]: the inputs of placement decisions.
//! - [`admin_http`]: the JSON admin API (any master; requests go to the leader).
//! - [`cli`]: `ferrum cluster|node|volume|partition ...` over the admin API.

pub mod admin_http;
pub mod app;
pub mod bootstrap;
pub mod cli;
pub mod config;
pub mod error;
pub mod liveness;
pub mod metrics;
pub mod placement;
pub mod resources;
pub mod server;
pub mod service;
pub mod state;

pub use config::{MasterArgs, MasterConfig, MasterSection};
pub use error::MasterError;
pub use server::{run, start, RunningMaster};

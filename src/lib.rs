//! kyso, the mobile-signing gateway.
//!
//! A portal asks for a signature over the [`api`]; the [`engine`] sends it to a provider through
//! an adapter in [`providers`], waits for the user's answer, has [`verify`] judge the signature
//! and the certificate, and records every state change with its event in the [`store`], from
//! where [`events`] pushes it to the portal's WebSockets. [`domain`] holds the session and its
//! rules; [`config`] and [`startup`] put the pieces together; [`dev`] runs everything with the
//! mock carriers embedded (the default `dev` feature); [`offline`] is `kyso verify`, the verifier
//! on the command line.

pub mod api;
pub mod config;
#[cfg(feature = "dev")]
pub mod dev;
pub mod domain;
pub mod engine;
pub mod events;
#[doc(hidden)]
pub mod fuzzing;
pub mod limiter;
pub mod offline;
pub mod outbound;
pub mod providers;
pub mod server;
pub mod shutdown;
pub mod startup;
pub mod store;
pub mod supervisor;
pub mod telemetry;
pub mod verify;

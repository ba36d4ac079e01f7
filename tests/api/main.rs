//! Integration tests: the real gateway against the real mock carriers. One binary (faster to
//! link), one module per concern.

mod behaviour;
mod cluster;
mod cms;
mod connections;
mod direct_start;
mod events;
mod fatal;
mod helpers;
mod limits;
mod ops;
mod pg;
mod portal;
mod pushes;
mod restart;
mod revocation;
mod signing;
mod sim;
mod store_story;
mod verifications;

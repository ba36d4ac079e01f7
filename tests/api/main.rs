//! Integration tests: the real gateway against the real mock carriers. One binary (faster to
//! link), one module per concern.

mod batch_error;
mod behaviour;
mod cancel;
mod cluster;
mod cms;
mod connections;
mod direct_start;
mod events;
mod fan_in_reconnect;
mod fatal;
mod helpers;
mod hostile;
mod hostile_xml;
mod json_errors;
mod leaks;
mod lease_cluster;
mod lease_fencing;
mod limits;
mod ops;
mod overload;
mod pg;
mod portal;
mod probes;
mod pushes;
mod replay_story;
mod restart;
mod revocation;
mod schema_guard;
mod session_ids;
mod shared_limits;
mod shown_text;
mod signing;
mod sim;
mod store_story;
mod verifications;

//! Integration tests: the mock carriers served on port 0, driven over real HTTP.

mod behaviours;
mod helpers;
mod phone;
mod pki;
mod requests;
mod revocation;
mod smartca;

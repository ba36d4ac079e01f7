//! Integration tests: the mock carriers served on port 0, driven over real HTTP.

mod behaviours;
mod helpers;
mod key_pool;
mod mssp;
mod mssp_behaviours;
mod mssp_client;
mod mssp_formats;
mod mssp_hostile;
mod mssp_schema;
mod phone;
mod pki;
mod requests;
mod revocation;
mod smartca;
mod smartca_accounts;

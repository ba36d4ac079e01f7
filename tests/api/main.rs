//! Integration tests: the real gateway against the real mock carriers. One binary (faster to
//! link), one module per concern.

mod behaviour;
mod events;
mod helpers;
mod ops;
mod portal;
mod restart;
mod signing;

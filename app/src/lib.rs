//! The application library: which environment a command is about to touch, what it may do
//! there, and how to connect.
//!
//! The flow is: [`Settings`] (from `env/environments.toml`) and the process environment go
//! into [`selection::resolve`], which loads the env files and detects the environment from
//! the URLs; the resulting [`Resolved`] goes into a [`Guard`], which consults the
//! [`matrix`] and hands out [`guard::WriteTarget`]s and [`guard::ReadTarget`]s. Code that
//! writes to a database takes a connection that only a `WriteTarget` can open, after it has
//! checked the database's own environment [`stamp`].

pub mod address;
pub mod connect;
pub mod database_url;
mod detect;
pub mod environment;
pub mod guard;
pub mod matrix;
mod restore_point;
pub mod secrets;
pub mod selection;
pub mod settings;
mod sql;
pub mod stamp;
mod template;

#[cfg(test)]
mod fuzz_tests;

pub use database_url::DatabaseUrl;
pub use environment::Environment;
pub use guard::Guard;
pub use selection::Resolved;
pub use settings::Settings;

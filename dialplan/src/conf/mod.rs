//! The generic configuration-file layer under the dialplan loader.

mod glob;
pub(crate) mod reader;
pub(crate) mod text;

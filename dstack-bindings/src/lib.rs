//! Python bindings for `dstack-core`, imported as `import dstack`.
//!
//! For now the module exposes the configuration parser; the `dstack.api` client surface comes
//! with its own issue. Parsing is done by `dstack_core::config`, never re-implemented here.
#![deny(unsafe_code)]

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// Parses a `.dstack.yml` text and returns the normalised configuration as a JSON string.
/// Raises `ValueError` with every problem (file:line:column: path: message) when it is invalid.
#[pyfunction]
#[pyo3(signature = (text, source_name = "<string>"))]
fn parse_configuration_json(text: &str, source_name: &str) -> PyResult<String> {
    let config = dstack_core::config::parse_str(source_name, text)
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    serde_json::to_string(&config).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// The native module behind the `dstack` package.
#[pymodule]
fn _dstack(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(parse_configuration_json, m)?)?;
    Ok(())
}

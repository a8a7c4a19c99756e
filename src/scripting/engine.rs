//! The one constructor of Rhai engines: every script runs in this sandbox.

use rhai::module_resolvers::DummyModuleResolver;
use rhai::{Engine, OptimizationLevel};

/// Operations one call may take before it is stopped (an endless loop ends here, in
/// milliseconds).
pub const MAX_OPERATIONS: u64 = 500_000;
/// Nested function calls.
pub const MAX_CALL_LEVELS: usize = 32;
/// Longest string a script may build, in bytes.
pub const MAX_STRING_BYTES: usize = 1 << 20;
/// Most items in one array or map.
pub const MAX_COLLECTION_ITEMS: usize = 10_000;

/// A sandboxed engine for the script `name` (used in its log lines): limits on operations,
/// call depth, expression depth and sizes; no module imports, no `eval`, no file access
/// (Rhai's standard library has none); `print` and `debug` go to the log, never stdout.
#[allow(clippy::disallowed_methods)] // The one place an engine is made.
pub fn sandboxed(name: &str) -> Engine {
    let mut engine = Engine::new();
    engine
        .set_max_operations(MAX_OPERATIONS)
        .set_max_call_levels(MAX_CALL_LEVELS)
        .set_max_expr_depths(64, 32)
        .set_max_string_size(MAX_STRING_BYTES)
        .set_max_array_size(MAX_COLLECTION_ITEMS)
        .set_max_map_size(MAX_COLLECTION_ITEMS)
        .set_max_modules(0)
        .set_strict_variables(true)
        .set_optimization_level(OptimizationLevel::Simple)
        .set_module_resolver(DummyModuleResolver::new());
    engine.disable_symbol("eval");
    let script = name.to_owned();
    engine.on_print(move |text| tracing::info!(script = %script, "{text}"));
    let script = name.to_owned();
    engine.on_debug(move |text, _source, pos| {
        tracing::debug!(script = %script, line = pos.line().unwrap_or(0), "{text}");
    });
    engine
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endless_loops_and_deep_recursion_are_stopped() {
        let engine = sandboxed("test");
        let err = engine.eval::<()>("loop { }").unwrap_err();
        assert!(err.to_string().contains("Too many operations"), "{err}");
        let err = engine.eval::<i64>("fn f(n) { f(n + 1) } f(0)").unwrap_err();
        assert!(
            err.to_string().to_lowercase().contains("stack overflow"),
            "{err}"
        );
    }

    #[test]
    fn sizes_are_bounded_and_imports_refused() {
        let engine = sandboxed("test");
        assert!(
            engine
                .eval::<()>("let s = \"x\"; loop { s += s; }")
                .is_err()
        );
        assert!(
            engine
                .eval::<()>("let a = []; loop { a.push(1); }")
                .is_err()
        );
        assert!(engine.eval::<()>("import \"std\" as x;").is_err());
        assert!(engine.eval::<i64>("eval(\"1\")").is_err());
    }
}

//! The one constructor of Rhai engines: every script runs in this sandbox.

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use rhai::module_resolvers::DummyModuleResolver;
use rhai::{Dynamic, Engine, OptimizationLevel};

/// Operations one call may take before it is stopped (an endless loop ends here, in
/// milliseconds).
pub const MAX_OPERATIONS: u64 = 500_000;
/// Nested function calls.
pub const MAX_CALL_LEVELS: usize = 32;
/// Longest string a script may build, in bytes.
pub const MAX_STRING_BYTES: usize = 1 << 20;
/// Most items in one array or map.
pub const MAX_COLLECTION_ITEMS: usize = 10_000;

/// Operations between two looks at the clock.
const CLOCK_EVERY: u64 = 1024;
/// Operations between two looks at the budget of a first attempt.
const BUDGET_EVERY: u64 = 256;

/// The token a call stopped at its first attempt's budget carries.
pub(crate) const OVER_BUDGET: &str = "over the first attempt's budget";

thread_local! {
    /// When the script call running on this thread began.
    static STARTED: Cell<Option<Instant>> = const { Cell::new(None) };
    /// The operation budget of a first attempt running on this thread, if one is.
    static ATTEMPT: Cell<Option<u64>> = const { Cell::new(None) };
    /// What a first attempt printed: logged only if the attempt is the one that counts.
    static HELD: RefCell<Vec<Printed>> = const { RefCell::new(Vec::new()) };
}

/// A line a script printed.
struct Printed {
    script: std::sync::Arc<str>,
    text: String,
    debug_line: Option<usize>,
}

impl Printed {
    fn log(self) {
        match self.debug_line {
            None => tracing::info!(script = %self.script, "{}", self.text),
            Some(line) => tracing::debug!(script = %self.script, line, "{}", self.text),
        }
    }
}

fn print(printed: Printed) {
    if ATTEMPT.with(Cell::get).is_some() {
        HELD.with(|held| held.borrow_mut().push(printed));
    } else {
        printed.log();
    }
}

/// The clock of one script call on this thread, from `start` until dropped.
#[derive(Debug)]
pub struct Clock(());

impl Clock {
    /// Start timing the call this thread is about to make.
    pub fn start() -> Clock {
        STARTED.with(|s| s.set(Some(Instant::now())));
        Clock(())
    }
}

impl Drop for Clock {
    fn drop(&mut self) {
        STARTED.with(|s| s.set(None));
    }
}

/// A first attempt at a call, stopped past `operations` (with [`OVER_BUDGET`]); what it
/// prints is held until [`Attempt::keep`] (dropped otherwise: the call is run again).
#[derive(Debug)]
pub struct Attempt(());

impl Attempt {
    /// Start a first attempt on this thread.
    pub fn start(operations: u64) -> Attempt {
        ATTEMPT.with(|a| a.set(Some(operations)));
        Attempt(())
    }

    /// The attempt counts: log what it printed.
    pub fn keep(self) {
        ATTEMPT.with(|a| a.set(None));
        for printed in HELD.with(|held| std::mem::take(&mut *held.borrow_mut())) {
            printed.log();
        }
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        ATTEMPT.with(|a| a.set(None));
        HELD.with(|held| held.borrow_mut().clear());
    }
}

/// Longest `print`/`debug` line kept from a script, in bytes.
const MAX_PRINT_BYTES: usize = 1024;

/// A sandboxed engine for the script `name` (used in its log lines): at most `operations`
/// operations per call, limits on call depth, expression depth and sizes (arrays and maps
/// count their nested items too, which bounds how deep data can nest); no module imports,
/// no `eval`, no file access (Rhai's standard library has none); `print` and `debug` go to
/// the log, never stdout, cut to 1 KiB with control characters escaped. With `time`, a call
/// that has run that long (see [`Clock`]) is stopped too: some single operations (copying a
/// deeply nested value) cost far more than others.
#[allow(clippy::disallowed_methods)] // The one place an engine is made.
pub fn sandboxed(name: &str, operations: u64, time: Option<Duration>) -> Engine {
    let mut engine = Engine::new();
    engine.on_progress(move |ops| {
        if ops % BUDGET_EVERY == 0
            && let Some(budget) = ATTEMPT.with(Cell::get)
            && ops > budget
        {
            return Some(Dynamic::from(OVER_BUDGET));
        }
        let limit = time?;
        if ops % CLOCK_EVERY != 0 {
            return None;
        }
        let started = STARTED.with(Cell::get)?;
        (started.elapsed() > limit)
            .then(|| Dynamic::from(format!("Script ran longer than {limit:?}")))
    });
    engine
        .set_max_operations(operations)
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
    let script: std::sync::Arc<str> = name.into();
    let for_print = script.clone();
    engine.on_print(move |text| {
        print(Printed {
            script: for_print.clone(),
            text: printable(text),
            debug_line: None,
        })
    });
    engine.on_debug(move |text, _source, pos| {
        print(Printed {
            script: script.clone(),
            text: printable(text),
            debug_line: Some(pos.line().unwrap_or(0)),
        })
    });
    engine
}

/// `text` as one log line: control characters escaped (a script printing client data cannot
/// forge log lines), cut to [`MAX_PRINT_BYTES`].
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_PRINT_BYTES) + 8);
    for c in text.chars() {
        if out.len() >= MAX_PRINT_BYTES {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endless_loops_and_deep_recursion_are_stopped() {
        let engine = sandboxed("test", MAX_OPERATIONS, None);
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
        let engine = sandboxed("test", MAX_OPERATIONS, None);
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

    #[test]
    fn nesting_is_bounded_by_the_item_limits() {
        // On a stack as large as a script thread's, as scripts run in the server.
        let run = || {
            let mut engine = sandboxed("test", 10_000_000, None);
            // The mechanism at a smaller size: copying nested data costs its depth, so the
            // full 10,000 would take a while in a debug build.
            engine.set_max_array_size(500).set_max_map_size(500);
            let arrays = engine
                .eval::<()>("let a = []; loop { a = [a]; }")
                .unwrap_err()
                .to_string();
            let maps = engine
                .eval::<()>("let m = #{}; loop { m = #{ m: m }; }")
                .unwrap_err()
                .to_string();
            (arrays, maps)
        };
        let (arrays, maps) = std::thread::Builder::new()
            .stack_size(256 << 20)
            .spawn(run)
            .unwrap()
            .join()
            .unwrap();
        assert!(arrays.contains("Size of array"), "{arrays}");
        assert!(maps.contains("Size of object map"), "{maps}");
    }

    #[test]
    fn a_call_is_stopped_at_its_time_limit() {
        let engine = sandboxed("test", u64::MAX, Some(Duration::from_millis(20)));
        let _clock = Clock::start();
        let err = engine.eval::<()>("loop { }").unwrap_err();
        let rhai::EvalAltResult::ErrorTerminated(why, _) = *err else {
            panic!("terminated: {err}");
        };
        assert!(why.to_string().contains("ran longer than 20ms"), "{why}");
    }

    #[test]
    fn printed_text_stays_one_bounded_line() {
        assert_eq!(printable("a\nb\r\x1b[31m"), "a\\nb\\r\\u{1b}[31m");
        assert!(printable(&"x".repeat(5000)).len() <= MAX_PRINT_BYTES + 4);
    }
}

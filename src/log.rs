//! One line per event on stderr: `level=info msg="..." key=value ...`.
//! Values are quoted when they contain spaces, quotes or `=`; nothing secret is ever
//! passed here (callers log user names and addresses, never passwords or tokens).

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

static DEBUG: AtomicBool = AtomicBool::new(false);

/// Turn debug lines on (`[general] debug = True`).
pub fn set_debug(on: bool) {
    DEBUG.store(on, Ordering::Relaxed);
}

pub fn debug_enabled() -> bool {
    DEBUG.load(Ordering::Relaxed)
}

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// Format one line (without the trailing newline). Public for tests.
pub fn format_line(level: Level, msg: &str, fields: &[(&str, &dyn std::fmt::Display)]) -> String {
    let mut line = String::with_capacity(64 + msg.len());
    let _ = write!(line, "level={} msg=", level.as_str());
    push_value(&mut line, msg);
    for (key, value) in fields {
        let _ = write!(line, " {key}=");
        push_value(&mut line, &value.to_string());
    }
    line
}

fn push_value(line: &mut String, value: &str) {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && c != '"' && c != '=' && c != '\\');
    if plain {
        line.push_str(value);
    } else {
        line.push('"');
        for c in value.chars() {
            match c {
                '"' => line.push_str("\\\""),
                '\\' => line.push_str("\\\\"),
                '\n' => line.push_str("\\n"),
                '\r' => line.push_str("\\r"),
                '\t' => line.push_str("\\t"),
                c if c.is_control() => {
                    let _ = write!(line, "\\u{{{:x}}}", c as u32);
                }
                c => line.push(c),
            }
        }
        line.push('"');
    }
}

/// Write one line to stderr (skipped for `Debug` unless debug is on).
pub fn emit(level: Level, msg: &str, fields: &[(&str, &dyn std::fmt::Display)]) {
    if level == Level::Debug && !debug_enabled() {
        return;
    }
    let mut line = format_line(level, msg, fields);
    line.push('\n');
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// `log!(info, "scan finished", repositories = n, seconds = t)`
#[macro_export]
macro_rules! log {
    ($level:ident, $msg:expr $(, $key:ident = $value:expr)* $(,)?) => {
        $crate::log::emit(
            $crate::log::log_level!($level),
            &$msg,
            &[$((stringify!($key), &$value as &dyn std::fmt::Display)),*],
        )
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __log_level {
    (debug) => {
        $crate::log::Level::Debug
    };
    (info) => {
        $crate::log::Level::Info
    };
    (warn) => {
        $crate::log::Level::Warn
    };
    (error) => {
        $crate::log::Level::Error
    };
}
pub use crate::__log_level as log_level;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_and_escaped() {
        let n = 3;
        let line = format_line(
            Level::Info,
            "scan done",
            &[("repos", &n), ("err", &"a \"b\"\nc")],
        );
        assert_eq!(
            line,
            r#"level=info msg="scan done" repos=3 err="a \"b\"\nc""#
        );
    }
}

//! `--format` (docker's, for `ps`, `images` and `inspect`): the part of Go's
//! `text/template` that scripts use, over the JSON that `--json` prints.
//!
//! A template is text with actions: `{{.}}` (the whole item), `{{.a.b}}` (a
//! field: as written, else the one whose name differs only in case, else
//! docker's name for it, so `{{.ID}}`, `{{.Names}}` and `{{.State}}` work),
//! `{{json .a}}`, `{{upper .a}}`, `{{lower .a}}`, `{{index .a "key"}}` (a
//! map's entry, or a list's by number), `{{join .a ", "}}` (a list's items).
//! A value prints as Go prints it: strings as they are, a missing one as
//! `<no value>`, lists as `[a b]`, maps as `map[k:v]` (keys sorted). `\t`
//! and `\n` in the text are a tab and a newline (docker's). `--format json`
//! is docker's too: each item as JSON on a line of its own.

use serde_json::Value;

use crate::error::{Error, Result};

/// A parsed `--format`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Action {
        func: Func,
        path: Vec<String>,
        /// `index`'s key, `join`'s separator.
        arg: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Print,
    Json,
    Upper,
    Lower,
    Index,
    Join,
}

/// docker's names of fields that tupper names otherwise.
const ALIASES: &[(&str, &str)] = &[
    ("names", "name"),
    ("state", "status"),
    ("createdat", "created"),
    ("repository", "name"),
];

impl Template {
    /// Parses `--format TEMPLATE` (`json`: each item as JSON).
    pub fn parse(format: &str) -> Result<Template> {
        let bad = |why: &str| Error::msg(format!("invalid --format {format:?}: {why}"));
        if format.trim() == "json" {
            return Ok(Template {
                parts: vec![Part::Action {
                    func: Func::Json,
                    path: Vec::new(),
                    arg: None,
                }],
            });
        }
        if format.starts_with("table") {
            return Err(bad(
                "table formats are not supported (tupper's own table is the default)",
            ));
        }
        let text = format.replace("\\t", "\t").replace("\\n", "\n");
        let mut parts = Vec::new();
        let mut rest = text.as_str();
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or_else(|| bad("a {{ without its }}"))?;
            parts.push(action(after[..close].trim()).map_err(|why| bad(&why))?);
            rest = &after[close + 2..];
        }
        if rest.contains("}}") {
            return Err(bad("a }} without its {{"));
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template { parts })
    }

    /// The template applied to `item`, with docker's newline after it.
    pub fn render(&self, item: &Value) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Action { func, path, arg } => {
                    let value = lookup(item, path);
                    out.push_str(&apply(*func, value, arg.as_deref()));
                }
            }
        }
        out.push('\n');
        out
    }
}

/// One `{{ ... }}`: `[FUNC] PATH [ARG]`.
fn action(inside: &str) -> std::result::Result<Part, String> {
    let words = split_words(inside)?;
    let (func, rest) = match words.first().map(String::as_str) {
        Some("json") => (Func::Json, &words[1..]),
        Some("upper") => (Func::Upper, &words[1..]),
        Some("lower") => (Func::Lower, &words[1..]),
        Some("index") => (Func::Index, &words[1..]),
        Some("join") => (Func::Join, &words[1..]),
        Some(w) if w.starts_with('.') => (Func::Print, &words[..]),
        Some(other) => {
            return Err(format!(
                "{{{{{inside}}}}}: {other:?} is not something tupper knows (.Field, json, upper, lower, index, join)"
            ))
        }
        None => return Err("an empty {{}}".into()),
    };
    let want_arg = matches!(func, Func::Index | Func::Join);
    let (path, arg) = match (rest, want_arg) {
        ([path], false) => (path, None),
        ([path, arg], true) => (path, Some(arg.clone())),
        _ => {
            return Err(format!(
                "{{{{{inside}}}}}: expected {}",
                match want_arg {
                    true => "a .Field and one argument",
                    false => "one .Field",
                }
            ))
        }
    };
    let path = match path.strip_prefix('.') {
        Some("") => Vec::new(),
        Some(p) => p.split('.').map(str::to_string).collect(),
        None => return Err(format!("{{{{{inside}}}}}: {path:?} is not a .Field")),
    };
    if path.iter().any(String::is_empty) {
        return Err(format!("{{{{{inside}}}}}: an empty field name"));
    }
    Ok(Part::Action { func, path, arg })
}

/// The words of an action: bare words, or Go's double-quoted strings.
fn split_words(s: &str) -> std::result::Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' {
            chars.next();
            let mut word = String::new();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some('t') => word.push('\t'),
                        Some('n') => word.push('\n'),
                        Some(other) => word.push(other),
                        None => return Err("a string without its closing quote".into()),
                    },
                    Some(other) => word.push(other),
                    None => return Err("a string without its closing quote".into()),
                }
            }
            words.push(word);
        } else {
            let mut word = String::new();
            while let Some(&c) = chars.peek().filter(|c| !c.is_whitespace()) {
                word.push(c);
                chars.next();
            }
            words.push(word);
        }
    }
    Ok(words)
}

/// The value at `path` in `item`: each name as written, else the one that
/// differs only in case, else docker's name for it.
fn lookup<'a>(item: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut at = item;
    for name in path {
        let map = at.as_object()?;
        let lower = name.to_ascii_lowercase();
        let alias = ALIASES.iter().find(|(d, _)| *d == lower).map(|(_, t)| *t);
        at = map
            .get(name)
            .or_else(|| {
                map.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v)
            })
            .or_else(|| alias.and_then(|a| map.get(a)))?;
    }
    Some(at)
}

fn apply(func: Func, value: Option<&Value>, arg: Option<&str>) -> String {
    match func {
        Func::Print => go_print(value),
        Func::Json => serde_json::to_string(value.unwrap_or(&Value::Null)).unwrap_or_default(),
        Func::Upper => go_print(value).to_uppercase(),
        Func::Lower => go_print(value).to_lowercase(),
        Func::Index => {
            let key = arg.unwrap_or_default();
            let entry = match value {
                Some(Value::Object(map)) => map.get(key),
                Some(Value::Array(list)) => key.parse::<usize>().ok().and_then(|i| list.get(i)),
                _ => None,
            };
            go_print(entry)
        }
        Func::Join => match value {
            Some(Value::Array(list)) => list
                .iter()
                .map(|v| go_print(Some(v)))
                .collect::<Vec<_>>()
                .join(arg.unwrap_or_default()),
            other => go_print(other),
        },
    }
}

/// A value as Go's `fmt` prints it in a template.
fn go_print(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "<no value>".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Array(list)) => format!(
            "[{}]",
            list.iter()
                .map(|v| go_print(Some(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Some(Value::Object(map)) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let inner: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| format!("{k}:{}", go_print(Some(v))))
                .collect();
            format!("map[{}]", inner.join(" "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(format: &str, item: &Value) -> String {
        Template::parse(format).unwrap().render(item)
    }

    #[test]
    fn fields_functions_and_go_s_printing() {
        let item = serde_json::json!({
            "id": "3f9a0c1d2e4b",
            "name": "web",
            "status": "running",
            "pid": 42,
            "labels": {"b": "2", "a": "1"},
            "ports": ["80/tcp", "53/udp"],
            "network": {"ip": "10.89.0.2"},
            "rm": false,
            "gone": null
        });
        assert_eq!(render("{{.id}}", &item), "3f9a0c1d2e4b\n");
        assert_eq!(
            render("{{.ID}} {{.Names}} {{.State}}", &item),
            "3f9a0c1d2e4b web running\n"
        );
        assert_eq!(render("{{.Network.IP}}", &item), "10.89.0.2\n");
        assert_eq!(render("{{.pid}}\\t{{.rm}}", &item), "42\tfalse\n");
        assert_eq!(render("{{.labels}}", &item), "map[a:1 b:2]\n");
        assert_eq!(render("{{.ports}}", &item), "[80/tcp 53/udp]\n");
        assert_eq!(render("{{join .ports \", \"}}", &item), "80/tcp, 53/udp\n");
        assert_eq!(render("{{index .labels \"b\"}}", &item), "2\n");
        assert_eq!(render("{{index .ports \"1\"}}", &item), "53/udp\n");
        assert_eq!(
            render("{{json .labels}}", &item),
            "{\"a\":\"1\",\"b\":\"2\"}\n"
        );
        assert_eq!(render("{{upper .name}}!", &item), "WEB!\n");
        assert_eq!(render("{{lower .Status}}", &item), "running\n");
        assert_eq!(
            render("{{.nothing}} {{.gone}} {{.name.deeper}}", &item),
            "<no value> <no value> <no value>\n"
        );
        assert_eq!(render("plain", &item), "plain\n");
        assert_eq!(
            render("json", &item),
            format!("{}\n", serde_json::to_string(&item).unwrap())
        );
        assert_eq!(
            render("{{json .}}", &item),
            format!("{}\n", serde_json::to_string(&item).unwrap())
        );
    }

    #[test]
    fn bad_templates_are_refused_with_the_reason() {
        for (format, why) in [
            ("{{.id", "without its }}"),
            ("{{.id}} }}", "without its {{"),
            ("{{}}", "empty"),
            ("{{range .ports}}", "\"range\""),
            ("{{id}}", "\"id\""),
            ("{{json}}", "one .Field"),
            ("{{index .labels}}", "one argument"),
            ("{{.a..b}}", "empty field"),
            ("{{index .a \"b}}", "closing quote"),
            ("table {{.ID}}", "table"),
        ] {
            let e = Template::parse(format).unwrap_err().to_string();
            assert!(e.contains(why) && e.contains("--format"), "{format}: {e}");
        }
    }
}

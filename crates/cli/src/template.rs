//! The subset of Go templates that `--format` uses in practice:
//! literal text, `{{.Field.Sub}}`, `{{json .X}}`, `{{.}}`, `{{upper .X}}`,
//! `{{lower .X}}`, `{{index .X "key"}}`, `{{join .X ","}}`, list rows'
//! `{{.Label "key"}}`, and `table`
//! prefix handling (left to the caller). `\t` and `\n` in the format are
//! taken as tab and newline, as Docker's CLI does.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Action(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct Template {
    parts: Vec<Part>,
}

/// Splits an action into words, keeping quoted strings whole.
fn words(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote = false;
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '"' => {
                quote = !quote;
                cur.push(c);
            }
            '\\' if quote => {
                if let Some(n) = it.next() {
                    cur.push(n);
                }
            }
            c if c.is_whitespace() && !quote => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if quote {
        return Err(format!("unterminated quoted string in {{{{{s}}}}}"));
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

impl Template {
    pub fn parse(src: &str) -> Result<Template, String> {
        let src = src.replace("\\t", "\t").replace("\\n", "\n");
        let mut parts = Vec::new();
        let mut rest = src.as_str();
        while let Some(i) = rest.find("{{") {
            if i > 0 {
                parts.push(Part::Text(rest[..i].to_owned()));
            }
            let after = &rest[i + 2..];
            let j = after
                .find("}}")
                .ok_or_else(|| format!("template: unclosed action in {src:?}"))?;
            let inner = after[..j]
                .trim()
                .trim_start_matches('-')
                .trim_end_matches('-');
            let w = words(inner.trim())?;
            if w.is_empty() {
                return Err(format!("template: empty action in {src:?}"));
            }
            parts.push(Part::Action(w));
            rest = &after[j + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Template { parts })
    }

    /// The field names used (`.Repository` -> "Repository"), for table headers.
    pub fn fields(&self) -> Vec<String> {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Action(w) => w.iter().find(|x| x.starts_with('.')).cloned(),
                Part::Text(_) => None,
            })
            .map(|f| f.trim_start_matches('.').to_owned())
            .collect()
    }

    /// The template with each action replaced by a header name from `header`.
    pub fn header(&self, header: &dyn Fn(&str) -> String) -> String {
        let mut s = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => s.push_str(t),
                Part::Action(w) => {
                    let f = w
                        .iter()
                        .find(|x| x.starts_with('.'))
                        .cloned()
                        .unwrap_or_default();
                    s.push_str(&header(f.trim_start_matches('.')));
                }
            }
        }
        s
    }

    pub fn render(&self, v: &Value) -> Result<String, String> {
        let mut s = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => s.push_str(t),
                Part::Action(w) => s.push_str(&action(w, v)?),
            }
        }
        Ok(s)
    }
}

fn lookup<'a>(path: &str, v: &'a Value) -> Result<&'a Value, String> {
    if path == "." {
        return Ok(v);
    }
    let mut cur = v;
    for k in path.trim_start_matches('.').split('.') {
        cur = match cur {
            Value::Object(o) => o.get(k).unwrap_or(&Value::Null),
            Value::Null => &Value::Null,
            _ => return Err(format!("template: can't evaluate field {k} in {path}")),
        };
    }
    Ok(cur)
}

fn arg(w: &str, v: &Value) -> Result<Value, String> {
    if w.starts_with('.') {
        lookup(w, v).cloned()
    } else if let Some(q) = w.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
        Ok(Value::String(q.to_owned()))
    } else {
        Err(format!("template: function {w:?} not defined"))
    }
}

/// Go's fmt of a value: strings bare, lists as `[a b]`, maps as `map[k:v]`.
pub fn go_string(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(go_string).collect::<Vec<_>>().join(" ")
        ),
        Value::Object(o) => format!(
            "map[{}]",
            o.iter()
                .map(|(k, v)| format!("{k}:{}", go_string(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        other => other.to_string(),
    }
}

/// Docker's `{{.Label "key"}}` method of list rows: from the row's
/// `LabelMap` object when it has one, else its `Labels` text (`k=v,k2=v2`).
fn label(v: &Value, key: &str) -> String {
    if let Some(m) = v["LabelMap"].as_object() {
        return m.get(key).map(go_string).unwrap_or_default();
    }
    v["Labels"]
        .as_str()
        .unwrap_or_default()
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, val)| val.to_string())
        .unwrap_or_default()
}

fn action(w: &[String], v: &Value) -> Result<String, String> {
    match w[0].as_str() {
        "json" if w.len() == 2 => Ok(arg(&w[1], v)?.to_string()),
        "upper" if w.len() == 2 => Ok(go_string(&arg(&w[1], v)?).to_uppercase()),
        "lower" if w.len() == 2 => Ok(go_string(&arg(&w[1], v)?).to_lowercase()),
        "index" if w.len() == 3 => {
            let m = arg(&w[1], v)?;
            let k = arg(&w[2], v)?;
            Ok(match (&m, &k) {
                (Value::Object(o), Value::String(k)) => o.get(k).map(go_string).unwrap_or_default(),
                _ => String::new(),
            })
        }
        "join" if w.len() == 3 => {
            let a = arg(&w[1], v)?;
            let sep = go_string(&arg(&w[2], v)?);
            Ok(a.as_array()
                .map(|a| a.iter().map(go_string).collect::<Vec<_>>().join(&sep))
                .unwrap_or_default())
        }
        ".Label" if w.len() == 2 => Ok(label(v, &go_string(&arg(&w[1], v)?))),
        f if f.starts_with('.') && w.len() == 1 => Ok(go_string(lookup(f, v)?)),
        _ => Err(format!(
            "template: unsupported action {{{{{}}}}}",
            w.join(" ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_fields_json_and_functions() {
        let v = serde_json::json!({"Repository": "busybox", "Tag": "latest", "Config": {"Cmd": ["sh", "-c"], "Labels": {"a": "b"}}});
        let t = Template::parse("{{.Repository}}:{{.Tag}}").unwrap();
        assert_eq!(t.render(&v).unwrap(), "busybox:latest");
        let t = Template::parse("{{json .Config.Cmd}}|{{.Config.Cmd}}|{{index .Config.Labels \"a\"}}|{{join .Config.Cmd \",\"}}").unwrap();
        assert_eq!(t.render(&v).unwrap(), r#"["sh","-c"]|[sh -c]|b|sh,-c"#);
        assert_eq!(
            Template::parse("{{.Repository}}\\t{{.Tag}}")
                .unwrap()
                .fields(),
            ["Repository", "Tag"]
        );
        let row = serde_json::json!({"Labels": "a=b,env=prod"});
        let t = Template::parse("{{.Label \"env\"}}|{{.Label \"none\"}}").unwrap();
        assert_eq!(t.render(&row).unwrap(), "prod|");
        let row = serde_json::json!({"Labels": "x", "LabelMap": {"env": "a,b"}});
        assert_eq!(t.render(&row).unwrap(), "a,b|");
        assert!(Template::parse("{{.X").is_err());
        assert!(Template::parse("{{nope .X}}").unwrap().render(&v).is_err());
    }
}

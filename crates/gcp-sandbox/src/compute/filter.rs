//! Compute Engine's list `filter`: `field = "value"`, `field != value`, the regular-expression forms
//! `field eq "re"` / `field ne "re"` (matched against the whole value), parentheses, and `AND` (also implied between
//! parenthesised terms). `OR` is accepted inside parentheses too, as Compute does. Anything else is refused with
//! Compute's 400, never ignored.

use regex::Regex;
use serde_json::Value;

use crate::error::ApiError;

/// A parsed filter.
#[derive(Debug)]
pub(crate) enum Filter {
    All(Vec<Filter>),
    Any(Vec<Filter>),
    Compare {
        field: String,
        negated: bool,
        value: Matcher,
    },
}

#[derive(Debug)]
pub(crate) enum Matcher {
    Exact(String),
    Pattern(Regex),
}

fn bad(filter: &str, why: &str) -> ApiError {
    ApiError::invalid(format!(
        "Invalid value for field 'filter': '{filter}'. Invalid list filter expression: {why}."
    ))
}

impl Filter {
    pub(crate) fn parse(text: &str) -> Result<Filter, ApiError> {
        let tokens = tokens(text).map_err(|why| bad(text, &why))?;
        let mut position = 0;
        let filter = expression(&tokens, &mut position).map_err(|why| bad(text, &why))?;
        if position != tokens.len() {
            return Err(bad(text, "unexpected text after the expression"));
        }
        Ok(filter)
    }

    pub(crate) fn matches(&self, resource: &Value) -> bool {
        match self {
            Filter::All(terms) => terms.iter().all(|term| term.matches(resource)),
            Filter::Any(terms) => terms.iter().any(|term| term.matches(resource)),
            Filter::Compare {
                field,
                negated,
                value,
            } => {
                let actual = match resource.get(field) {
                    Some(Value::String(text)) => text.clone(),
                    Some(Value::Null) | None => String::new(),
                    Some(other) => other.to_string(),
                };
                let equal = match value {
                    Matcher::Exact(expected) => &actual == expected,
                    Matcher::Pattern(pattern) => pattern.is_match(&actual),
                };
                equal != *negated
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    Word(String),
    Quoted(String),
    Operator(&'static str),
}

fn tokens(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            ' ' | '\t' | '\n' => {
                chars.next();
            }
            '(' => {
                chars.next();
                tokens.push(Token::Open);
            }
            ')' => {
                chars.next();
                tokens.push(Token::Close);
            }
            '=' => {
                chars.next();
                tokens.push(Token::Operator("="));
            }
            '!' => {
                chars.next();
                if chars.next() != Some('=') {
                    return Err("'!' must be followed by '='".into());
                }
                tokens.push(Token::Operator("!="));
            }
            '"' | '\'' => {
                chars.next();
                let mut value = String::new();
                loop {
                    match chars.next() {
                        Some('\\') => value.extend(chars.next()),
                        Some(quote) if quote == c => break,
                        Some(other) => value.push(other),
                        None => return Err("an unterminated string".into()),
                    }
                }
                tokens.push(Token::Quoted(value));
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || "()=!\"'".contains(c) {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                tokens.push(Token::Word(word));
            }
        }
    }
    Ok(tokens)
}

fn expression(tokens: &[Token], position: &mut usize) -> Result<Filter, String> {
    let mut all = vec![term(tokens, position)?];
    let mut any: Vec<Filter> = Vec::new();
    while let Some(token) = tokens.get(*position) {
        match token {
            Token::Close => break,
            Token::Word(word) if word == "AND" => {
                *position += 1;
                all.push(term(tokens, position)?);
            }
            Token::Word(word) if word == "OR" => {
                *position += 1;
                any.push(Filter::All(std::mem::take(&mut all)));
                all.push(term(tokens, position)?);
            }
            // Terms side by side are joined by AND.
            _ => all.push(term(tokens, position)?),
        }
    }
    let conjunction = if all.len() == 1 {
        all.pop().expect("one term")
    } else {
        Filter::All(all)
    };
    if any.is_empty() {
        return Ok(conjunction);
    }
    any.push(conjunction);
    Ok(Filter::Any(any))
}

fn term(tokens: &[Token], position: &mut usize) -> Result<Filter, String> {
    match tokens.get(*position) {
        Some(Token::Open) => {
            *position += 1;
            let inner = expression(tokens, position)?;
            if tokens.get(*position) != Some(&Token::Close) {
                return Err("a '(' without its ')'".into());
            }
            *position += 1;
            Ok(inner)
        }
        Some(Token::Word(field)) => {
            if !field
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
            {
                return Err(format!("'{field}' is not a field name"));
            }
            let field = field.clone();
            *position += 1;
            let operator = match tokens.get(*position) {
                Some(Token::Operator(operator)) => *operator,
                Some(Token::Word(word)) if word == "eq" || word == "ne" => {
                    if word == "eq" {
                        "eq"
                    } else {
                        "ne"
                    }
                }
                _ => return Err(format!("'{field}' must be followed by =, !=, eq or ne")),
            };
            *position += 1;
            let value = match tokens.get(*position) {
                Some(Token::Quoted(value)) | Some(Token::Word(value)) => value.clone(),
                _ => return Err(format!("'{field} {operator}' needs a value")),
            };
            *position += 1;
            let (negated, value) = match operator {
                "=" => (false, Matcher::Exact(value)),
                "!=" => (true, Matcher::Exact(value)),
                regex_operator => {
                    let pattern = Regex::new(&format!("^(?:{value})$"))
                        .map_err(|_| format!("'{value}' is not a regular expression"))?;
                    (regex_operator == "ne", Matcher::Pattern(pattern))
                }
            };
            Ok(Filter::Compare {
                field,
                negated,
                value,
            })
        }
        _ => Err("an expression must start with a field name or '('".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn compute_filters_select_as_documented() {
        let rules = [
            json!({"name": "web-1", "disabled": false, "direction": "INGRESS", "priority": 1000}),
            json!({"name": "web-2", "disabled": true, "direction": "INGRESS", "priority": 900}),
            json!({"name": "db", "disabled": false, "direction": "EGRESS", "priority": 1000}),
        ];
        let names = |filter: &str| -> Vec<String> {
            let filter = Filter::parse(filter).expect(filter);
            rules
                .iter()
                .filter(|rule| filter.matches(rule))
                .map(|rule| rule["name"].as_str().expect("name").to_string())
                .collect()
        };
        assert_eq!(names(r#"name = "db""#), ["db"]);
        assert_eq!(names(r#"name != "db""#), ["web-1", "web-2"]);
        assert_eq!(names(r#"name eq "web-.*""#), ["web-1", "web-2"]);
        assert_eq!(
            names("name eq web"),
            Vec::<String>::new(),
            "a whole-value match"
        );
        assert_eq!(names(r#"name ne "web-.*""#), ["db"]);
        assert_eq!(names("disabled = false"), ["web-1", "db"]);
        assert_eq!(names("(disabled = false) (direction = INGRESS)"), ["web-1"]);
        assert_eq!(
            names("disabled = false AND priority = 1000"),
            ["web-1", "db"]
        );
        assert_eq!(
            names(r#"(name = "db") OR (name = "web-2")"#),
            ["web-2", "db"]
        );
    }

    #[test]
    fn a_filter_compute_would_refuse_is_refused() {
        for filter in [
            "name",
            "name ~ x",
            "(name = x",
            "name = \"x",
            "name eq \"(\"",
            "= x",
            "name = x)",
        ] {
            assert!(Filter::parse(filter).is_err(), "{filter}");
        }
    }
}

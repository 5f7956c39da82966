//! Cloud Logging's query language — what the sandbox's `entries:list` and sink filters select, and what antibody
//! judges an exclusion or a sink by: comparisons (`=`, `!=`, `:` "has", `<`, `<=`, `>`, `>=`, `=~`, `!~`), `AND`,
//! `OR`, `NOT` (and `-`), parentheses, implicit AND between terms (a new line included), `log_id("…")`,
//! `sample(FIELD, FRACTION)`, quoted path segments (`labels."k8s-pod/app"`), booleans and numbers, severities in
//! their order (`severity>=WARNING` selects ERROR), and repeated fields that match when any element does.
//! Precedence as Logging's reference gives it: NOT, then OR, then AND. What it does not understand is refused, never
//! read as "everything".

use regex::Regex;
use serde_json::Value;

#[derive(Debug)]
pub enum Query {
    All(Vec<Query>),
    Any(Vec<Query>),
    Not(Box<Query>),
    Compare {
        path: Vec<String>,
        operator: Operator,
        value: String,
        pattern: Option<Regex>,
    },
    LogId(String),
    /// `sample(FIELD, FRACTION)`: a share of the entries, chosen by a hash of the field's value.
    Sample {
        path: Vec<String>,
        fraction: f64,
    },
    /// The empty query: every entry.
    Everything,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Equal,
    NotEqual,
    Has,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    Matches,
    NotMatches,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    Minus,
    Operator(Operator),
    Word(String),
    Quoted(String),
    Dot,
    Comma,
}

impl Query {
    /// Parses a query; `Err` says, in one sentence, what was not understood.
    pub fn parse(text: &str) -> Result<Query, String> {
        let tokens = tokenize(text)?;
        if tokens.is_empty() {
            return Ok(Query::Everything);
        }
        let mut parser = Parser {
            tokens,
            position: 0,
        };
        let query = parser.conjunction()?;
        if parser.position != parser.tokens.len() {
            return Err(format!(
                "unexpected {} in the filter",
                describe(&parser.tokens[parser.position])
            ));
        }
        Ok(query)
    }

    /// Whether the query may select an entry of this shape whatever a `sample()` draws: `Some(answer)` when the
    /// answer does not depend on sampling, `None` when it does. What a judge of filters asks ("could this exclusion
    /// drop such an entry?" is "not `Some(false)`").
    pub fn selects(&self, entry: &Value) -> Option<bool> {
        match self {
            Query::Sample { fraction, .. } => match *fraction {
                f if f <= 0.0 => Some(false),
                f if f >= 1.0 => Some(true),
                _ => None,
            },
            Query::Not(term) => term.selects(entry).map(|selected| !selected),
            Query::All(terms) => {
                let answers: Vec<Option<bool>> =
                    terms.iter().map(|term| term.selects(entry)).collect();
                if answers.contains(&Some(false)) {
                    Some(false)
                } else if answers.contains(&None) {
                    None
                } else {
                    Some(true)
                }
            }
            Query::Any(terms) => {
                let answers: Vec<Option<bool>> =
                    terms.iter().map(|term| term.selects(entry)).collect();
                if answers.contains(&Some(true)) {
                    Some(true)
                } else if answers.contains(&None) {
                    None
                } else {
                    Some(false)
                }
            }
            other => Some(other.matches(entry)),
        }
    }

    pub fn matches(&self, entry: &Value) -> bool {
        match self {
            Query::Everything => true,
            Query::Sample { path, fraction } => {
                let mut found = Vec::new();
                collect(entry, path, &mut found);
                // FNV-1a of the value: the same entry is always in or out, as Google's sample is.
                let hash = found.first().map_or(0u64, |value| {
                    text(value)
                        .bytes()
                        .fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
                            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
                        })
                });
                (hash as f64 / u64::MAX as f64) < *fraction
            }
            Query::All(terms) => terms.iter().all(|term| term.matches(entry)),
            Query::Any(terms) => terms.iter().any(|term| term.matches(entry)),
            Query::Not(term) => !term.matches(entry),
            Query::LogId(id) => entry["logName"].as_str().is_some_and(|name| {
                name.rsplit_once("/logs/").is_some_and(|(_, log)| {
                    log == id || log.replace("%2F", "/").replace("%2f", "/") == *id
                })
            }),
            Query::Compare {
                path,
                operator,
                value,
                pattern,
            } => {
                let mut found = Vec::new();
                collect(entry, path, &mut found);
                if *operator == Operator::NotEqual {
                    return !found.iter().any(|actual| equal(actual, value));
                }
                if *operator == Operator::NotMatches {
                    return !found.iter().any(|actual| {
                        pattern
                            .as_ref()
                            .is_some_and(|pattern| pattern.is_match(&text(actual)))
                    });
                }
                if path.len() == 1 && path[0] == "severity" {
                    // An entry without a severity has DEFAULT.
                    if found.is_empty() {
                        found.push(&Value::Null);
                    }
                    return found.iter().any(|actual| {
                        compare_severity(actual, *operator, value, pattern.as_ref())
                    });
                }
                found
                    .iter()
                    .any(|actual| compare(actual, *operator, value, pattern.as_ref()))
            }
        }
    }
}

/// Every value at `path`, descending into arrays (a repeated field matches when any element does).
fn collect<'a>(value: &'a Value, path: &[String], found: &mut Vec<&'a Value>) {
    match (value, path.split_first()) {
        (Value::Array(items), _) => items.iter().for_each(|item| collect(item, path, found)),
        (_, None) => found.push(value),
        (Value::Object(fields), Some((key, rest))) => {
            if let Some(next) = fields.get(key) {
                collect(next, rest, found);
            }
        }
        _ => {}
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn equal(actual: &Value, expected: &str) -> bool {
    match actual {
        Value::String(text) => text == expected,
        Value::Bool(flag) => expected.eq_ignore_ascii_case(if *flag { "true" } else { "false" }),
        Value::Number(number) => number
            .as_f64()
            .zip(expected.parse::<f64>().ok())
            .is_some_and(|(actual, expected)| actual == expected),
        _ => false,
    }
}

fn compare(actual: &Value, operator: Operator, expected: &str, pattern: Option<&Regex>) -> bool {
    let actual_text = text(actual);
    match operator {
        Operator::Equal => equal(actual, expected),
        Operator::Has => {
            expected == "*"
                || actual_text
                    .to_lowercase()
                    .contains(&expected.to_lowercase())
        }
        Operator::Matches => pattern.is_some_and(|pattern| pattern.is_match(&actual_text)),
        Operator::NotEqual | Operator::NotMatches => unreachable!("handled by the caller"),
        ordering => {
            let order = match (actual_text.parse::<f64>(), expected.parse::<f64>()) {
                (Ok(actual), Ok(expected)) => actual.partial_cmp(&expected),
                _ => Some(actual_text.as_str().cmp(expected)),
            };
            let Some(order) = order else {
                return false;
            };
            match ordering {
                Operator::Less => order.is_lt(),
                Operator::LessOrEqual => order.is_le(),
                Operator::Greater => order.is_gt(),
                _ => order.is_ge(),
            }
        }
    }
}

/// A severity's rank: Logging's names (any case) or their numbers (DEFAULT 0 … EMERGENCY 800).
fn severity_rank(text: &str) -> Option<i64> {
    const NAMES: [&str; 9] = [
        "DEFAULT",
        "DEBUG",
        "INFO",
        "NOTICE",
        "WARNING",
        "ERROR",
        "CRITICAL",
        "ALERT",
        "EMERGENCY",
    ];
    NAMES
        .iter()
        .position(|name| name.eq_ignore_ascii_case(text))
        .map(|index| index as i64 * 100)
        .or_else(|| text.parse().ok())
}

/// `severity` compares by rank; an entry without one is DEFAULT.
fn compare_severity(
    actual: &Value,
    operator: Operator,
    expected: &str,
    pattern: Option<&Regex>,
) -> bool {
    let (Some(actual_rank), Some(expected_rank)) = (
        severity_rank(&text(actual)).or(actual.is_null().then_some(0)),
        severity_rank(expected),
    ) else {
        return compare(actual, operator, expected, pattern);
    };
    let order = actual_rank.cmp(&expected_rank);
    match operator {
        Operator::Equal => order.is_eq(),
        Operator::Less => order.is_lt(),
        Operator::LessOrEqual => order.is_le(),
        Operator::Greater => order.is_gt(),
        Operator::GreaterOrEqual => order.is_ge(),
        _ => compare(actual, operator, expected, pattern),
    }
}

fn describe(token: &Token) -> String {
    match token {
        Token::Open => "'('".into(),
        Token::Close => "')'".into(),
        Token::Minus => "'-'".into(),
        Token::Dot => "'.'".into(),
        Token::Comma => "','".into(),
        Token::Operator(operator) => format!("the operator {operator:?}"),
        Token::Word(word) => format!("'{word}'"),
        Token::Quoted(text) => format!("\"{text}\""),
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut index = 0;
    while index < chars.len() {
        let c = chars[index];
        let next = chars.get(index + 1).copied();
        let (token, width) = match (c, next) {
            (c, _) if c.is_whitespace() => {
                index += 1;
                continue;
            }
            ('(', _) => (Token::Open, 1),
            (')', _) => (Token::Close, 1),
            ('.', _) => (Token::Dot, 1),
            (',', _) => (Token::Comma, 1),
            ('-', _) => (Token::Minus, 1),
            ('!', Some('=')) => (Token::Operator(Operator::NotEqual), 2),
            ('!', Some('~')) => (Token::Operator(Operator::NotMatches), 2),
            ('=', Some('~')) => (Token::Operator(Operator::Matches), 2),
            ('=', _) => (Token::Operator(Operator::Equal), 1),
            (':', _) => (Token::Operator(Operator::Has), 1),
            ('<', Some('=')) => (Token::Operator(Operator::LessOrEqual), 2),
            ('<', _) => (Token::Operator(Operator::Less), 1),
            ('>', Some('=')) => (Token::Operator(Operator::GreaterOrEqual), 2),
            ('>', _) => (Token::Operator(Operator::Greater), 1),
            ('"', _) => {
                let mut value = String::new();
                let mut end = index + 1;
                loop {
                    match chars.get(end) {
                        Some('\\') => {
                            value.extend(chars.get(end + 1));
                            end += 2;
                        }
                        Some('"') => break,
                        Some(other) => {
                            value.push(*other);
                            end += 1;
                        }
                        None => return Err("an unterminated string in the filter".into()),
                    }
                }
                (Token::Quoted(value), end + 1 - index)
            }
            _ => {
                let mut end = index;
                // A number keeps its decimal point (`0.25`); elsewhere a dot separates a path's fields.
                let number = c.is_ascii_digit();
                while let Some(c) = chars.get(end) {
                    if c.is_whitespace() || "()=!:<>\",".contains(*c) || (*c == '.' && !number) {
                        break;
                    }
                    end += 1;
                }
                if end == index {
                    return Err(format!("'{c}' is not understood in a filter"));
                }
                (Token::Word(chars[index..end].iter().collect()), end - index)
            }
        };
        tokens.push(token);
        index += width;
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    position: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position)
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(found)) if found == word)
    }

    /// Terms joined by AND, written or implied; OR binds tighter.
    fn conjunction(&mut self) -> Result<Query, String> {
        let mut terms = vec![self.disjunction()?];
        loop {
            match self.peek() {
                None | Some(Token::Close) => break,
                _ if self.keyword("AND") => {
                    self.position += 1;
                    terms.push(self.disjunction()?);
                }
                _ => terms.push(self.disjunction()?),
            }
        }
        Ok(if terms.len() == 1 {
            terms.pop().expect("one term")
        } else {
            Query::All(terms)
        })
    }

    fn disjunction(&mut self) -> Result<Query, String> {
        let mut terms = vec![self.negation()?];
        while self.keyword("OR") {
            self.position += 1;
            terms.push(self.negation()?);
        }
        Ok(if terms.len() == 1 {
            terms.pop().expect("one term")
        } else {
            Query::Any(terms)
        })
    }

    fn negation(&mut self) -> Result<Query, String> {
        if self.keyword("NOT") || self.peek() == Some(&Token::Minus) {
            self.position += 1;
            return Ok(Query::Not(Box::new(self.negation()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Query, String> {
        match self.peek().cloned() {
            Some(Token::Open) => {
                self.position += 1;
                let inner = self.conjunction()?;
                if self.peek() != Some(&Token::Close) {
                    return Err("a '(' without its ')' in the filter".into());
                }
                self.position += 1;
                Ok(inner)
            }
            Some(Token::Word(word)) if word.eq_ignore_ascii_case("log_id") => {
                self.position += 1;
                let (Some(Token::Open), Some(Token::Quoted(id)), Some(Token::Close)) = (
                    self.tokens.get(self.position).cloned(),
                    self.tokens.get(self.position + 1).cloned(),
                    self.tokens.get(self.position + 2).cloned(),
                ) else {
                    return Err("log_id takes one quoted log id: log_id(\"…\")".into());
                };
                self.position += 3;
                Ok(Query::LogId(id))
            }
            Some(Token::Word(word)) if word.eq_ignore_ascii_case("sample") => {
                self.position += 1;
                if self.peek() != Some(&Token::Open) {
                    return Err("sample takes a field and a fraction: sample(insertId, 0.1)".into());
                }
                self.position += 1;
                let mut path = Vec::new();
                while let Some(Token::Word(segment) | Token::Quoted(segment)) = self.peek().cloned()
                {
                    path.push(segment);
                    self.position += 1;
                    if self.peek() != Some(&Token::Dot) {
                        break;
                    }
                    self.position += 1;
                }
                let fraction = match (
                    self.peek().cloned(),
                    self.tokens.get(self.position + 1).cloned(),
                    self.tokens.get(self.position + 2).cloned(),
                ) {
                    (Some(Token::Comma), Some(Token::Word(number)), Some(Token::Close)) => {
                        number.parse::<f64>().ok()
                    }
                    _ => None,
                };
                let Some(fraction) = fraction.filter(|fraction| (0.0..=1.0).contains(fraction))
                else {
                    return Err("sample takes a field and a fraction between 0 and 1: sample(insertId, 0.1)".into());
                };
                if path.is_empty() {
                    return Err("sample takes a field and a fraction: sample(insertId, 0.1)".into());
                }
                self.position += 3;
                Ok(Query::Sample { path, fraction })
            }
            Some(Token::Word(_)) | Some(Token::Quoted(_)) => self.comparison(),
            Some(other) => Err(format!("unexpected {} in the filter", describe(&other))),
            None => Err("the filter ends where a term was expected".into()),
        }
    }

    fn comparison(&mut self) -> Result<Query, String> {
        let mut path = Vec::new();
        loop {
            match self.peek().cloned() {
                Some(Token::Word(segment)) | Some(Token::Quoted(segment)) => {
                    if segment.chars().any(|c| c.is_whitespace()) || segment.is_empty() {
                        return Err(format!("'{segment}' is not a field"));
                    }
                    path.push(segment);
                    self.position += 1;
                }
                _ => return Err("a field name was expected".into()),
            }
            if self.peek() == Some(&Token::Dot) {
                self.position += 1;
                continue;
            }
            break;
        }
        let Some(Token::Operator(operator)) = self.peek().cloned() else {
            // A bare word alone would search every field: not emulated, so refused.
            return Err(format!(
                "'{}' has no comparison; a search of every field is not supported",
                path.join(".")
            ));
        };
        self.position += 1;
        let value = match self.peek().cloned() {
            Some(Token::Quoted(value)) | Some(Token::Word(value)) => value,
            Some(Token::Minus) => {
                self.position += 1;
                match self.peek().cloned() {
                    Some(Token::Word(value)) => format!("-{value}"),
                    _ => return Err("a value was expected after '-'".into()),
                }
            }
            _ => {
                return Err(format!(
                    "'{}' needs a value to compare with",
                    path.join(".")
                ));
            }
        };
        self.position += 1;
        let pattern = match operator {
            Operator::Matches | Operator::NotMatches => Some(
                Regex::new(&value).map_err(|_| format!("'{value}' is not a regular expression"))?,
            ),
            _ => None,
        };
        Ok(Query::Compare {
            path,
            operator,
            value,
            pattern,
        })
    }
}

#[cfg(test)]
mod tests;

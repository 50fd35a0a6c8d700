//! A compiler for the subset of CEL (Common Expression Language) that fraud
//! analysts use to write risk rules over a typed feature struct.
//!
//! A rule is compiled once against a [`Schema`] (the list of dotted field
//! paths with their types) into a [`Program`], a tree of closures
//! specialised by type, which is then evaluated per request with
//! [`Program::eval`]. Everything is type-checked at compile time, so a typo
//! in a field name or a type confusion is a compile [`Diagnostic`], never a
//! rule that silently evaluates to `false`.
//!
//! # Supported subset
//!
//! * **Literals**: `true`, `false`; ints (`42`, `0x2A`, range of `i64`;
//!   `-9223372036854775808` works); doubles (`1.5`, `.5`, `1e3`,
//!   `2.5E-3`); strings in `'...'` or `"..."` with the escapes `\\ \" \' \n
//!   \t \r` and `\uXXXX`. Not supported: `null`, unsigned (`1u`), bytes,
//!   raw and triple-quoted strings, map/message literals.
//! * **Comments**: `// ...` to end of line. Whitespace includes newlines, so
//!   rules may span lines (TOML multi-line strings).
//! * **Fields**: a dotted path such as `geo.country` is looked up as a whole
//!   in the schema (`Schema::fields()`), e.g. `velocity.user_failures_1h`.
//!   A single-segment path (`score`) works the same way.
//! * **Operators**, by precedence from loosest to tightest:
//!   `? :` (right associative), `||`, `&&`, relations
//!   `== != < <= > >= in`, `+ -`, `* / %`, unary `! -`, member access
//!   `.field` / `.method()`, parentheses.
//! * **Types** of operators:
//!   * `==` `!=`: any two operands of the same type.
//!   * `<` `<=` `>` `>=`: int, double, string (lexicographic by bytes) and
//!     bool (`false < true`).
//!   * `+`: int, double, string (concatenation); `-` `*` `/`: int, double;
//!     `%`: int only; unary `-`: int, double; `!`, `&&`, `||`: bool.
//!   * **Numeric promotion** (a deliberate deviation from CEL, which has no
//!     implicit conversions): when an int meets a double in an arithmetic
//!     operator, a comparison, a `? :` or an `in` list, the int is converted
//!     to double. So `geo.speed_kmh > 900` works for a double field.
//!   * `x in [a, b, c]`: the right side must be a list literal whose
//!     elements are literals of the type of `x` (after numeric promotion).
//!     List literals are allowed nowhere else. String lists of more than 8
//!     elements are looked up in a hash set.
//!   * `c ? a : b`: `c` bool, `a` and `b` of the same type.
//! * **Functions**: `size(s)` and `s.size()` (length of a string in Unicode
//!   code points); `s.startsWith(t)`, `s.endsWith(t)`, `s.contains(t)`.
//!   No other functions or macros (`has`, `matches`, `int()`, `exists`...).
//! * The whole rule must be of type bool.
//!
//! # Semantics
//!
//! * Int arithmetic is checked: overflow (including `-i64::MIN` and
//!   `i64::MIN / -1`) gives [`EvalError::Overflow`]; `/` and `%` by zero give
//!   [`EvalError::DivisionByZero`] / [`EvalError::ModuloByZero`]. Int `/`
//!   truncates toward zero and `%` takes the sign of the dividend (as in
//!   CEL). Double arithmetic follows IEEE 754 (`x / 0.0` is infinite).
//! * `&&` and `||` short-circuit left to right, with CEL's commutative error
//!   semantics: `false && <error>` and `<error> && false` are both `false`,
//!   `true || <error>` and `<error> || true` are both `true`; otherwise the
//!   first error is returned. Every other error propagates to
//!   [`Program::eval`] as `Err`.
//! * Constant subexpressions are folded at compile time; a constant that
//!   fails (`1 / 0`) fails at evaluation, as in CEL.
//!
//! # Diagnostics and limits
//!
//! [`compile`] reports all diagnostics it can find (sorted by position,
//! at most 50): every lexical error; the first syntax error (parsing stops
//! there, as later ones are mostly follow-on errors); and, if the parse
//! succeeded, every type error in independent subexpressions (unknown
//! fields with a "did you mean" suggestion, type mismatches naming both
//! types, unknown functions or methods, wrong arity, non-bool rule).
//! Positions are 1-based line and column, columns counted in chars.
//! Sources longer than [`MAX_SOURCE_LEN`] bytes and expressions nested
//! deeper than [`MAX_DEPTH`] (parentheses, unary operators, binary operator
//! chains other than `&&`/`||`, which are flattened) are rejected with a
//! diagnostic; no input can panic or overflow the stack.

mod check;
mod compile;
mod lexer;
mod parser;
mod schema;

#[cfg(test)]
mod tests;

use std::fmt;

pub use schema::{FieldDef, Schema, Type, Value};

use compile::{Node, PNode};
use lexer::Pos;

/// Maximum length of a rule's source text, in bytes.
pub const MAX_SOURCE_LEN: usize = 4096;
/// Maximum nesting depth of an expression.
pub const MAX_DEPTH: usize = 32;
/// At most this many diagnostics are returned by [`compile`].
pub const MAX_DIAGNOSTICS: usize = 50;

/// A compile-time error with its position in the rule's source text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based line.
    pub line: u32,
    /// 1-based column, counted in chars.
    pub column: u32,
    /// Human-readable description.
    pub message: String,
}

impl Diagnostic {
    fn at(pos: Pos, message: impl Into<String>) -> Self {
        Diagnostic {
            line: pos.line,
            column: pos.col,
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for Diagnostic {}

/// A run-time error of [`Program::eval`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvalError {
    /// Int division by zero.
    DivisionByZero,
    /// Int modulo by zero.
    ModuloByZero,
    /// Int arithmetic overflowed.
    Overflow,
    /// A schema accessor returned a value of another type than declared
    /// (a bug in the schema, not in the rule).
    FieldType {
        /// The field's path.
        path: &'static str,
        /// The type the schema declares.
        expected: Type,
    },
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvalError::DivisionByZero => f.write_str("division by zero"),
            EvalError::ModuloByZero => f.write_str("modulo by zero"),
            EvalError::Overflow => f.write_str("integer overflow"),
            EvalError::FieldType { path, expected } => write!(
                f,
                "schema error: field `{path}` is declared {expected} but its accessor returned another type"
            ),
        }
    }
}

impl std::error::Error for EvalError {}

/// A compiled boolean rule. Cheap to evaluate, `Send + Sync`.
pub struct Program<T> {
    root: PNode<T, bool>,
    fields: Vec<&'static str>,
}

impl<T> fmt::Debug for Program<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Program")
            .field("fields_used", &self.fields)
            .finish_non_exhaustive()
    }
}

impl<T: Schema> Program<T> {
    /// Evaluates the rule on `input`.
    #[inline]
    pub fn eval(&self, input: &T) -> Result<bool, EvalError> {
        match &self.root {
            PNode::Dyn(f) => f(input),
            PNode::Const(b) => Ok(*b),
            PNode::Field(get, path) => match get(input) {
                Value::Bool(b) => Ok(b),
                _ => Err(EvalError::FieldType {
                    path,
                    expected: Type::Bool,
                }),
            },
        }
    }

    /// The schema paths the rule references, sorted and deduplicated.
    pub fn fields_used(&self) -> Vec<&'static str> {
        self.fields.clone()
    }
}

fn finish(mut diags: Vec<Diagnostic>) -> Vec<Diagnostic> {
    diags.sort_by_key(|d| (d.line, d.column));
    diags.truncate(MAX_DIAGNOSTICS);
    diags
}

/// Compiles a boolean rule against the schema of `T`.
///
/// Returns every diagnostic found (see the module documentation) if the
/// rule is malformed, refers to unknown fields, is ill-typed or is not a
/// bool expression.
pub fn compile<T: Schema>(source: &str) -> Result<Program<T>, Vec<Diagnostic>> {
    if source.len() > MAX_SOURCE_LEN {
        return Err(vec![Diagnostic {
            line: 1,
            column: 1,
            message: format!(
                "rule is too long: {} bytes (maximum is {MAX_SOURCE_LEN})",
                source.len()
            ),
        }]);
    }
    let mut diags = Vec::new();
    let tokens = lexer::tokenize(source, &mut diags);
    let Some(ast) = parser::parse(&tokens, &mut diags) else {
        return Err(finish(diags));
    };
    let mut checker = check::Checker::<T>::new(&mut diags);
    let typed = checker.check_rule(&ast);
    let mut fields = std::mem::take(&mut checker.used);
    let typed = match typed {
        Some(t) if diags.is_empty() => t,
        _ => {
            if diags.is_empty() {
                diags.push(Diagnostic::at(ast.start, "internal error: rule rejected"));
            }
            return Err(finish(diags));
        }
    };
    let internal = |what: &str| {
        vec![Diagnostic::at(
            ast.start,
            format!("internal compiler error: {what}"),
        )]
    };
    let root = match compile::compile_node(typed) {
        Ok(Node::Bool(root)) => root,
        Ok(_) => return Err(internal("rule is not bool")),
        Err(compile::Internal(what)) => return Err(internal(what)),
    };
    fields.sort_unstable();
    fields.dedup();
    Ok(Program { root, fields })
}

//! The typed feature schema that CEL rules are checked and compiled against.

use std::fmt;

/// The type of a schema field or of a (sub)expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    /// `bool`
    Bool,
    /// `int` (64-bit signed)
    Int,
    /// `double` (64-bit IEEE float)
    Double,
    /// `string` (UTF-8)
    String,
}

impl Type {
    /// The CEL name of the type, as used in diagnostics.
    pub fn name(self) -> &'static str {
        match self {
            Type::Bool => "bool",
            Type::Int => "int",
            Type::Double => "double",
            Type::String => "string",
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A field value read from the input struct.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    /// A `bool` value.
    Bool(bool),
    /// An `int` value.
    Int(i64),
    /// A `double` value.
    Double(f64),
    /// A `string` value borrowed from the input.
    Str(&'a str),
}

/// One field of a schema: a dotted path, its type and an accessor.
///
/// `get` must return the [`Value`] variant matching `ty`; if it does not,
/// evaluation returns [`super::EvalError::FieldType`] (it never panics).
pub struct FieldDef<T: 'static> {
    /// Dotted path, e.g. `"velocity.user_failures_1h"` or `"geo.country"`.
    pub path: &'static str,
    /// Static type of the field.
    pub ty: Type,
    /// Accessor reading the field from the input.
    pub get: fn(&T) -> Value<'_>,
    /// Human-readable description (for documentation / "explain").
    pub doc: &'static str,
}

/// A struct whose fields can be referenced from CEL rules.
pub trait Schema: Sized + 'static {
    /// All fields, each addressed by its full dotted path.
    fn fields() -> &'static [FieldDef<Self>];
}

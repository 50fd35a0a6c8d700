//! Recursive-descent parser with an explicit nesting limit.
//!
//! Every recursive call is accounted for by a nesting counter and every AST
//! node records its depth, both bounded by [`MAX_DEPTH`], so no input can
//! overflow the stack here or in the later (recursive) passes.

use super::lexer::{Pos, Tok, Token};
use super::{Diagnostic, MAX_DEPTH};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum BinOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    In,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
            BinOp::In => "in",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum UnOp {
    Not,
    Neg,
}

#[derive(Debug)]
pub(super) struct Expr {
    pub kind: ExprKind,
    /// Position of the token that best identifies the node (operator,
    /// function or field name, literal).
    pub pos: Pos,
    /// Position of the first token of the expression.
    pub start: Pos,
    /// Height of the subtree (a leaf has depth 1).
    pub depth: usize,
}

#[derive(Debug)]
pub(super) enum ExprKind {
    Bool(bool),
    Int(i64),
    Double(f64),
    Str(String),
    Null,
    Ident(String),
    Select(Box<Expr>, String),
    Call {
        target: Option<Box<Expr>>,
        name: String,
        args: Vec<Expr>,
    },
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
    List(Vec<Expr>),
    /// A malformed literal, already diagnosed by the lexer or parser.
    Error,
}

/// Parsing stopped (the diagnostic has been recorded).
pub(super) struct Fatal;

type PResult = Result<Expr, Fatal>;

static EOF: Token = Token {
    tok: Tok::Eof,
    pos: Pos { line: 1, col: 1 },
};

struct Parser<'t, 'd> {
    toks: &'t [Token],
    i: usize,
    nest: usize,
    diags: &'d mut Vec<Diagnostic>,
}

fn max_depth<'e>(it: impl IntoIterator<Item = &'e Expr>) -> usize {
    it.into_iter().map(|e| e.depth).max().unwrap_or(0)
}

impl<'t> Parser<'t, '_> {
    fn peek(&self) -> &'t Token {
        self.toks
            .get(self.i)
            .or_else(|| self.toks.last())
            .unwrap_or(&EOF)
    }

    fn peek_at(&self, n: usize) -> &'t Tok {
        &self
            .toks
            .get(self.i.saturating_add(n))
            .or_else(|| self.toks.last())
            .unwrap_or(&EOF)
            .tok
    }

    fn bump(&mut self) -> &'t Token {
        let t = self.peek();
        if self.i < self.toks.len() {
            self.i += 1;
        }
        t
    }

    fn fail<X>(&mut self, pos: Pos, message: impl Into<String>) -> Result<X, Fatal> {
        self.diags.push(Diagnostic::at(pos, message));
        Err(Fatal)
    }

    /// A syntax error at token `t`; not reported if `t` is an invalid token,
    /// which the lexer has already reported.
    fn fail_at<X>(&mut self, t: &Token, message: String) -> Result<X, Fatal> {
        if t.tok != Tok::Error {
            self.diags.push(Diagnostic::at(t.pos, message));
        }
        Err(Fatal)
    }

    fn unexpected<X>(&mut self, expected: &str) -> Result<X, Fatal> {
        let t = self.peek();
        let msg = format!("unexpected {}, expected {expected}", t.tok.describe());
        self.fail_at(t, msg)
    }

    fn node(&mut self, kind: ExprKind, pos: Pos, start: Pos, child_depth: usize) -> PResult {
        let depth = child_depth.saturating_add(1);
        if depth > MAX_DEPTH {
            return self.fail(
                pos,
                format!("expression is nested too deeply (maximum depth is {MAX_DEPTH})"),
            );
        }
        Ok(Expr {
            kind,
            pos,
            start,
            depth,
        })
    }

    fn leaf(&mut self, kind: ExprKind, pos: Pos) -> PResult {
        self.node(kind, pos, pos, 0)
    }

    fn expr(&mut self) -> PResult {
        self.nest = self.nest.saturating_add(1);
        if self.nest > MAX_DEPTH {
            let pos = self.peek().pos;
            return self.fail(
                pos,
                format!("expression is nested too deeply (maximum depth is {MAX_DEPTH})"),
            );
        }
        let r = self.conditional();
        self.nest = self.nest.saturating_sub(1);
        r
    }

    fn conditional(&mut self) -> PResult {
        let cond = self.or()?;
        if self.peek().tok != Tok::Question {
            return Ok(cond);
        }
        let qpos = self.bump().pos;
        let a = self.or()?;
        if self.peek().tok != Tok::Colon {
            return self.unexpected("`:` of the conditional expression");
        }
        self.bump();
        let b = self.expr()?;
        let d = max_depth([&cond, &a, &b]);
        let start = cond.start;
        self.node(
            ExprKind::Cond(Box::new(cond), Box::new(a), Box::new(b)),
            qpos,
            start,
            d,
        )
    }

    fn or(&mut self) -> PResult {
        let first = self.and()?;
        if self.peek().tok != Tok::Or {
            return Ok(first);
        }
        let pos = self.peek().pos;
        let start = first.start;
        let mut items = vec![first];
        while self.peek().tok == Tok::Or {
            self.bump();
            items.push(self.and()?);
        }
        let d = max_depth(&items);
        self.node(ExprKind::Or(items), pos, start, d)
    }

    fn and(&mut self) -> PResult {
        let first = self.relation()?;
        if self.peek().tok != Tok::And {
            return Ok(first);
        }
        let pos = self.peek().pos;
        let start = first.start;
        let mut items = vec![first];
        while self.peek().tok == Tok::And {
            self.bump();
            items.push(self.relation()?);
        }
        let d = max_depth(&items);
        self.node(ExprKind::And(items), pos, start, d)
    }

    fn binary_chain(
        &mut self,
        ops: fn(&Tok) -> Option<BinOp>,
        next: fn(&mut Self) -> PResult,
    ) -> PResult {
        let mut left = next(self)?;
        while let Some(op) = ops(&self.peek().tok) {
            let pos = self.bump().pos;
            let right = next(self)?;
            let d = left.depth.max(right.depth);
            let start = left.start;
            left = self.node(
                ExprKind::Binary(op, Box::new(left), Box::new(right)),
                pos,
                start,
                d,
            )?;
        }
        Ok(left)
    }

    fn relation(&mut self) -> PResult {
        self.binary_chain(
            |t| match t {
                Tok::Eq => Some(BinOp::Eq),
                Tok::Ne => Some(BinOp::Ne),
                Tok::Lt => Some(BinOp::Lt),
                Tok::Le => Some(BinOp::Le),
                Tok::Gt => Some(BinOp::Gt),
                Tok::Ge => Some(BinOp::Ge),
                Tok::In => Some(BinOp::In),
                _ => None,
            },
            Self::addition,
        )
    }

    fn addition(&mut self) -> PResult {
        self.binary_chain(
            |t| match t {
                Tok::Plus => Some(BinOp::Add),
                Tok::Minus => Some(BinOp::Sub),
                _ => None,
            },
            Self::multiplication,
        )
    }

    fn multiplication(&mut self) -> PResult {
        self.binary_chain(
            |t| match t {
                Tok::Star => Some(BinOp::Mul),
                Tok::Slash => Some(BinOp::Div),
                Tok::Percent => Some(BinOp::Rem),
                _ => None,
            },
            Self::unary,
        )
    }

    fn unary(&mut self) -> PResult {
        let mut ops: Vec<(UnOp, Pos)> = Vec::new();
        loop {
            let t = self.peek();
            let op = match t.tok {
                Tok::Not => UnOp::Not,
                Tok::Minus => UnOp::Neg,
                _ => break,
            };
            if ops.len() >= MAX_DEPTH {
                return self.fail(
                    t.pos,
                    format!("expression is nested too deeply (maximum depth is {MAX_DEPTH})"),
                );
            }
            ops.push((op, t.pos));
            self.bump();
        }
        // A minus directly before a number literal is part of the literal
        // (this is what makes -9223372036854775808 representable).
        let mut operand = None;
        if let Some(&(UnOp::Neg, mpos)) = ops.last() {
            let t = self.peek();
            let lit = match t.tok {
                Tok::Int(v) if v <= 1u64 << 63 => {
                    Some(ExprKind::Int(0i64.wrapping_sub_unsigned(v)))
                }
                Tok::Double(v) => Some(ExprKind::Double(-v)),
                _ => None,
            };
            if let Some(kind) = lit {
                // Only when the literal is not the receiver of a member access.
                if !matches!(self.peek_at(1), Tok::Dot) {
                    self.bump();
                    ops.pop();
                    operand = Some(self.leaf(kind, mpos)?);
                }
            }
        }
        let mut e = match operand {
            Some(e) => e,
            None => self.member()?,
        };
        while let Some((op, pos)) = ops.pop() {
            let d = e.depth;
            e = self.node(ExprKind::Unary(op, Box::new(e)), pos, pos, d)?;
        }
        Ok(e)
    }

    fn member(&mut self) -> PResult {
        let mut e = self.primary()?;
        loop {
            match self.peek().tok {
                Tok::Dot => {
                    self.bump();
                    let t = self.peek();
                    let Tok::Ident(name) = &t.tok else {
                        return self.unexpected("a field or method name after `.`");
                    };
                    self.bump();
                    let start = e.start;
                    if self.peek().tok == Tok::LParen {
                        let args = self.args()?;
                        let d = e.depth.max(max_depth(&args));
                        e = self.node(
                            ExprKind::Call {
                                target: Some(Box::new(e)),
                                name: name.clone(),
                                args,
                            },
                            t.pos,
                            start,
                            d,
                        )?;
                    } else {
                        let d = e.depth;
                        e = self.node(
                            ExprKind::Select(Box::new(e), name.clone()),
                            t.pos,
                            start,
                            d,
                        )?;
                    }
                }
                Tok::LBracket => {
                    let pos = self.peek().pos;
                    return self.fail(pos, "indexing with `[...]` is not supported");
                }
                _ => return Ok(e),
            }
        }
    }

    /// Parses `( [expr {, expr}] )`; the current token is `(`.
    fn args(&mut self) -> Result<Vec<Expr>, Fatal> {
        let open = self.bump().pos;
        self.list_tail(Tok::RParen, open, "`)`")
    }

    fn list_tail(&mut self, close: Tok, open: Pos, close_s: &str) -> Result<Vec<Expr>, Fatal> {
        let mut items = Vec::new();
        if self.peek().tok == close {
            self.bump();
            return Ok(items);
        }
        loop {
            items.push(self.expr()?);
            let t = self.peek();
            if t.tok == close {
                self.bump();
                return Ok(items);
            }
            if t.tok == Tok::Comma {
                self.bump();
                // Trailing comma.
                if self.peek().tok == close {
                    self.bump();
                    return Ok(items);
                }
                continue;
            }
            let msg = format!(
                "expected `,` or {close_s} (to close the one opened at {}:{}), found {}",
                open.line,
                open.col,
                t.tok.describe()
            );
            return self.fail_at(t, msg);
        }
    }

    fn primary(&mut self) -> PResult {
        let t = self.peek();
        let pos = t.pos;
        match &t.tok {
            Tok::Int(v) => {
                self.bump();
                match i64::try_from(*v) {
                    Ok(v) => self.leaf(ExprKind::Int(v), pos),
                    Err(_) => {
                        self.diags.push(Diagnostic::at(
                            pos,
                            "integer literal out of range for int (64-bit)",
                        ));
                        self.leaf(ExprKind::Error, pos)
                    }
                }
            }
            Tok::Double(v) => {
                self.bump();
                self.leaf(ExprKind::Double(*v), pos)
            }
            Tok::Str(s) => {
                self.bump();
                self.leaf(ExprKind::Str(s.clone()), pos)
            }
            Tok::True => {
                self.bump();
                self.leaf(ExprKind::Bool(true), pos)
            }
            Tok::False => {
                self.bump();
                self.leaf(ExprKind::Bool(false), pos)
            }
            Tok::Null => {
                self.bump();
                self.leaf(ExprKind::Null, pos)
            }
            Tok::Error => {
                self.bump();
                self.leaf(ExprKind::Error, pos)
            }
            Tok::Ident(name) => {
                self.bump();
                if self.peek().tok == Tok::LParen {
                    let args = self.args()?;
                    let d = max_depth(&args);
                    self.node(
                        ExprKind::Call {
                            target: None,
                            name: name.clone(),
                            args,
                        },
                        pos,
                        pos,
                        d,
                    )
                } else {
                    self.leaf(ExprKind::Ident(name.clone()), pos)
                }
            }
            Tok::LParen => {
                self.bump();
                let mut e = self.expr()?;
                let t = self.peek();
                if t.tok != Tok::RParen {
                    let msg = format!(
                        "expected `)` (to close the `(` at {}:{}), found {}",
                        pos.line,
                        pos.col,
                        t.tok.describe()
                    );
                    return self.fail_at(t, msg);
                }
                self.bump();
                e.start = pos;
                Ok(e)
            }
            Tok::LBracket => {
                self.bump();
                let items = self.list_tail(Tok::RBracket, pos, "`]`")?;
                let d = max_depth(&items);
                self.node(ExprKind::List(items), pos, pos, d)
            }
            Tok::LBrace => self.fail(pos, "map and message literals are not supported"),
            _ => self.unexpected("an expression"),
        }
    }
}

/// Parses a whole expression. Syntax errors are appended to `diags`; on a
/// syntax error `None` is returned (only the first one is reported, as the
/// rest would be follow-on errors).
pub(super) fn parse(tokens: &[Token], diags: &mut Vec<Diagnostic>) -> Option<Expr> {
    let mut p = Parser {
        toks: tokens,
        i: 0,
        nest: 0,
        diags,
    };
    let e = p.expr().ok()?;
    let t = p.peek();
    if t.tok != Tok::Eof {
        let msg = format!(
            "unexpected {} after a complete expression (missing operator?)",
            t.tok.describe()
        );
        let _ = p.fail_at::<()>(t, msg);
        return None;
    }
    Some(e)
}

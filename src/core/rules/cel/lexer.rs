//! Tokenizer for the supported CEL subset.

use super::Diagnostic;

/// A 1-based source position (line, column in chars).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(super) struct Pos {
    pub line: u32,
    pub col: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Tok {
    /// Unsigned integer literal; range against i64 is checked by the parser
    /// (so that `-9223372036854775808` works).
    Int(u64),
    Double(f64),
    Str(String),
    Ident(String),
    True,
    False,
    Null,
    In,
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Comma,
    Dot,
    Question,
    Colon,
    Not,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    /// A malformed literal that was already diagnosed; parses as an
    /// expression of unknown type so that checking can continue.
    Error,
    Eof,
}

impl Tok {
    /// How the token is shown in syntax error messages.
    pub fn describe(&self) -> String {
        let s = match self {
            Tok::Int(_) => "integer literal",
            Tok::Double(_) => "double literal",
            Tok::Str(_) => "string literal",
            Tok::Ident(name) => return format!("identifier `{name}`"),
            Tok::True => "`true`",
            Tok::False => "`false`",
            Tok::Null => "`null`",
            Tok::In => "`in`",
            Tok::LParen => "`(`",
            Tok::RParen => "`)`",
            Tok::LBracket => "`[`",
            Tok::RBracket => "`]`",
            Tok::LBrace => "`{`",
            Tok::RBrace => "`}`",
            Tok::Comma => "`,`",
            Tok::Dot => "`.`",
            Tok::Question => "`?`",
            Tok::Colon => "`:`",
            Tok::Not => "`!`",
            Tok::Eq => "`==`",
            Tok::Ne => "`!=`",
            Tok::Lt => "`<`",
            Tok::Le => "`<=`",
            Tok::Gt => "`>`",
            Tok::Ge => "`>=`",
            Tok::And => "`&&`",
            Tok::Or => "`||`",
            Tok::Plus => "`+`",
            Tok::Minus => "`-`",
            Tok::Star => "`*`",
            Tok::Slash => "`/`",
            Tok::Percent => "`%`",
            Tok::Error => "invalid token",
            Tok::Eof => "end of expression",
        };
        s.to_string()
    }
}

#[derive(Clone, Debug)]
pub(super) struct Token {
    pub tok: Tok,
    pub pos: Pos,
}

struct Lexer<'s> {
    chars: std::iter::Peekable<std::str::Chars<'s>>,
    /// One extra char of lookahead beyond `chars.peek()`.
    rest: &'s str,
    line: u32,
    col: u32,
    diags: Vec<Diagnostic>,
}

impl<'s> Lexer<'s> {
    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            col: self.col,
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.chars.peek().copied()
    }

    /// The char after the next one.
    fn peek2(&self) -> Option<char> {
        let mut it = self.rest.chars();
        it.next();
        it.next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        self.rest = self.rest.get(c.len_utf8()..).unwrap_or("");
        if c == '\n' {
            self.line = self.line.saturating_add(1);
            self.col = 1;
        } else {
            self.col = self.col.saturating_add(1);
        }
        Some(c)
    }

    fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.diags.push(Diagnostic::at(pos, message));
    }

    fn skip_trivia(&mut self) {
        loop {
            match self.peek() {
                Some(c) if c.is_whitespace() => {
                    self.bump();
                }
                Some('/') if self.peek2() == Some('/') => {
                    while let Some(c) = self.peek() {
                        if c == '\n' {
                            break;
                        }
                        self.bump();
                    }
                }
                _ => return,
            }
        }
    }

    fn number(&mut self, start: Pos) -> Tok {
        let mut text = String::new();
        // Hexadecimal integer.
        if self.peek() == Some('0') && matches!(self.peek2(), Some('x' | 'X')) {
            self.bump();
            self.bump();
            while let Some(c) = self.peek() {
                if c.is_ascii_hexdigit() {
                    text.push(c);
                    self.bump();
                } else {
                    break;
                }
            }
            if text.is_empty() {
                self.error(start, "invalid hexadecimal literal");
                return Tok::Error;
            }
            return self.int_suffix(start, u64::from_str_radix(&text, 16).ok());
        }
        let mut is_double = false;
        while let Some(c) = self.peek() {
            if c.is_ascii_digit() {
                text.push(c);
                self.bump();
            } else {
                break;
            }
        }
        if self.peek() == Some('.') && self.peek2().is_some_and(|c| c.is_ascii_digit()) {
            is_double = true;
            text.push('.');
            self.bump();
            while let Some(c) = self.peek() {
                if c.is_ascii_digit() {
                    text.push(c);
                    self.bump();
                } else {
                    break;
                }
            }
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            let after = self.peek2();
            let mut look = self.rest.chars();
            look.next();
            look.next();
            let after2 = look.next();
            let ok = match after {
                Some(c) if c.is_ascii_digit() => true,
                Some('+' | '-') => after2.is_some_and(|c| c.is_ascii_digit()),
                _ => false,
            };
            if ok {
                is_double = true;
                text.push('e');
                self.bump();
                if let Some(c @ ('+' | '-')) = self.peek() {
                    text.push(c);
                    self.bump();
                }
                while let Some(c) = self.peek() {
                    if c.is_ascii_digit() {
                        text.push(c);
                        self.bump();
                    } else {
                        break;
                    }
                }
            } else {
                self.bump();
                self.error(start, "invalid exponent in number literal");
                return Tok::Error;
            }
        }
        if is_double {
            return match text.parse::<f64>() {
                Ok(v) if v.is_finite() => Tok::Double(v),
                _ => {
                    self.error(start, "double literal out of range");
                    Tok::Error
                }
            };
        }
        self.int_suffix(start, text.parse::<u64>().ok())
    }

    fn int_suffix(&mut self, start: Pos, value: Option<u64>) -> Tok {
        if matches!(self.peek(), Some('u' | 'U')) {
            self.bump();
            self.error(start, "unsigned integer literals are not supported");
            return Tok::Error;
        }
        if self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
                self.bump();
            }
            self.error(start, "invalid number literal");
            return Tok::Error;
        }
        match value {
            Some(v) => Tok::Int(v),
            None => {
                self.error(start, "integer literal out of range for int (64-bit)");
                Tok::Error
            }
        }
    }

    fn string(&mut self, start: Pos, quote: char) -> Tok {
        self.bump(); // opening quote
        let mut out = String::new();
        let mut ok = true;
        loop {
            let esc_pos = self.pos();
            match self.peek() {
                None | Some('\n') | Some('\r') => {
                    self.error(start, "unterminated string literal");
                    return Tok::Error;
                }
                Some(c) if c == quote => {
                    self.bump();
                    break;
                }
                Some('\\') => {
                    self.bump();
                    match self.bump() {
                        Some('\\') => out.push('\\'),
                        Some('"') => out.push('"'),
                        Some('\'') => out.push('\''),
                        Some('`') => out.push('`'),
                        Some('?') => out.push('?'),
                        Some('n') => out.push('\n'),
                        Some('t') => out.push('\t'),
                        Some('r') => out.push('\r'),
                        Some('u') => {
                            let mut code = 0u32;
                            let mut good = true;
                            for _ in 0..4 {
                                match self.peek().and_then(|c| c.to_digit(16)) {
                                    Some(d) => {
                                        code = code * 16 + d;
                                        self.bump();
                                    }
                                    None => {
                                        good = false;
                                        break;
                                    }
                                }
                            }
                            match char::from_u32(code) {
                                Some(c) if good => out.push(c),
                                _ => {
                                    ok = false;
                                    self.error(
                                        esc_pos,
                                        "invalid unicode escape (expected \\uXXXX)",
                                    );
                                }
                            }
                        }
                        None | Some('\n') => {
                            self.error(start, "unterminated string literal");
                            return Tok::Error;
                        }
                        Some(c) => {
                            ok = false;
                            self.error(esc_pos, format!("invalid escape sequence `\\{c}`"));
                        }
                    }
                }
                Some(c) => {
                    out.push(c);
                    self.bump();
                }
            }
        }
        if ok { Tok::Str(out) } else { Tok::Error }
    }

    fn ident(&mut self) -> Tok {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                name.push(c);
                self.bump();
            } else {
                break;
            }
        }
        match name.as_str() {
            "true" => Tok::True,
            "false" => Tok::False,
            "null" => Tok::Null,
            "in" => Tok::In,
            _ => Tok::Ident(name),
        }
    }

    fn next_token(&mut self) -> Option<Token> {
        self.skip_trivia();
        let pos = self.pos();
        let c = self.peek()?;
        let tok = if c.is_ascii_digit()
            || (c == '.' && self.peek2().is_some_and(|d| d.is_ascii_digit()))
        {
            self.number(pos)
        } else if c.is_ascii_alphabetic() || c == '_' {
            self.ident()
        } else if c == '"' || c == '\'' {
            self.string(pos, c)
        } else {
            self.bump();
            let next = self.peek();
            let two = |l: &mut Self, t: Tok| {
                l.bump();
                t
            };
            match (c, next) {
                ('=', Some('=')) => two(self, Tok::Eq),
                ('!', Some('=')) => two(self, Tok::Ne),
                ('<', Some('=')) => two(self, Tok::Le),
                ('>', Some('=')) => two(self, Tok::Ge),
                ('&', Some('&')) => two(self, Tok::And),
                ('|', Some('|')) => two(self, Tok::Or),
                ('=', _) => {
                    self.error(pos, "unexpected `=`; did you mean `==`?");
                    Tok::Eq
                }
                ('&', _) => {
                    self.error(pos, "unexpected `&`; did you mean `&&`?");
                    Tok::And
                }
                ('|', _) => {
                    self.error(pos, "unexpected `|`; did you mean `||`?");
                    Tok::Or
                }
                ('!', _) => Tok::Not,
                ('<', _) => Tok::Lt,
                ('>', _) => Tok::Gt,
                ('(', _) => Tok::LParen,
                (')', _) => Tok::RParen,
                ('[', _) => Tok::LBracket,
                (']', _) => Tok::RBracket,
                ('{', _) => Tok::LBrace,
                ('}', _) => Tok::RBrace,
                (',', _) => Tok::Comma,
                ('.', _) => Tok::Dot,
                ('?', _) => Tok::Question,
                (':', _) => Tok::Colon,
                ('+', _) => Tok::Plus,
                ('-', _) => Tok::Minus,
                ('*', _) => Tok::Star,
                ('/', _) => Tok::Slash,
                ('%', _) => Tok::Percent,
                _ => {
                    self.error(pos, format!("unexpected character `{}`", c.escape_debug()));
                    Tok::Error
                }
            }
        };
        Some(Token { tok, pos })
    }
}

/// Tokenizes `src`. Lexical errors are appended to `diags`; the returned
/// token list always ends with [`Tok::Eof`].
pub(super) fn tokenize(src: &str, diags: &mut Vec<Diagnostic>) -> Vec<Token> {
    let mut lx = Lexer {
        chars: src.chars().peekable(),
        rest: src,
        line: 1,
        col: 1,
        diags: Vec::new(),
    };
    let mut out = Vec::new();
    while let Some(t) = lx.next_token() {
        out.push(t);
    }
    let pos = lx.pos();
    out.push(Token { tok: Tok::Eof, pos });
    diags.append(&mut lx.diags);
    out
}

//! Dice expressions: `3d6+2`, `d20`, `2d20kh1` (advantage), `4d6kl3`,
//! `1d8-1+1d4`. A sum of terms, each a number of dice (with an optional
//! keep-highest or keep-lowest) or a flat number, with `+` or `-` between.
//! Spaces between the parts are ignored (not inside a number), and `D`,
//! `KH`, `KL` read as lowercase.
//!
//! Bounds keep a roll cheap and its log small: at most [`TEXT_MAX`] bytes
//! of expression, [`TERMS_MAX`] terms, [`DICE_MAX`] dice in all, dice of 2
//! to [`FACES_MAX`] faces, flat numbers up to [`FLAT_MAX`], numbers of at
//! most six digits.

use hoard_sdk::Rng;
use serde::{Deserialize, Serialize};

pub const TEXT_MAX: usize = 64;
pub const TERMS_MAX: usize = 10;
pub const DICE_MAX: u32 = 100;
pub const FACES_MAX: u32 = 1000;
pub const FLAT_MAX: u32 = 10_000;

/// A parsed expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expr {
    pub terms: Vec<Term>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Term {
    /// `count` dice of `faces` faces, added (`negative`: subtracted).
    Dice {
        negative: bool,
        count: u32,
        faces: u32,
        keep: Option<Keep>,
    },
    Flat(i64),
}

/// Which dice of a term count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Keep {
    Highest(u32),
    Lowest(u32),
}

/// Why an expression was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiceError {
    /// Not an expression.
    Malformed(String),
    /// An expression, but past the bounds.
    TooLarge(String),
}

/// One term as rolled: what the log keeps, enough to audit it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rolled {
    /// `3d6`, `2d20kh1`, `-1d4`, `+2`.
    pub term: String,
    /// Each die in the order rolled (empty for a flat number).
    pub dice: Vec<u32>,
    /// What the term adds to the total (negative if subtracted).
    pub value: i64,
}

struct Reader<'a> {
    text: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    /// The next byte past any spaces, lowercased.
    fn peek(&mut self) -> Option<u8> {
        while self.text.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
        self.text.get(self.at).map(u8::to_ascii_lowercase)
    }

    fn eat(&mut self, byte: u8) -> bool {
        let eaten = self.peek() == Some(byte);
        self.at += eaten as usize;
        eaten
    }

    /// A run of digits (no spaces inside), if one is here. Refuses a run
    /// too long to be within any bound before converting it.
    fn number(&mut self) -> Result<Option<u32>, DiceError> {
        self.peek();
        let start = self.at;
        while self.text.get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
        let digits = &self.text[start..self.at];
        match digits.len() {
            0 => Ok(None),
            1..=6 => Ok(Some(
                std::str::from_utf8(digits)
                    .expect("digits")
                    .parse()
                    .expect("six digits fit"),
            )),
            _ => Err(DiceError::TooLarge(format!(
                "{} is too large a number for dice",
                String::from_utf8_lossy(digits)
            ))),
        }
    }
}

fn malformed(message: impl Into<String>) -> DiceError {
    DiceError::Malformed(message.into())
}

fn too_large(message: impl Into<String>) -> DiceError {
    DiceError::TooLarge(message.into())
}

/// Reads `text` as an expression.
pub fn parse(text: &str) -> Result<Expr, DiceError> {
    if text.len() > TEXT_MAX {
        return Err(too_large(format!(
            "a dice expression is at most {TEXT_MAX} bytes"
        )));
    }
    let mut reader = Reader {
        text: text.as_bytes(),
        at: 0,
    };
    if reader.peek().is_none() {
        return Err(malformed("an empty dice expression: try 3d6+2"));
    }
    let mut terms = Vec::new();
    let mut dice = 0u32;
    loop {
        let negative = if reader.eat(b'-') {
            true
        } else {
            reader.eat(b'+');
            false
        };
        let count = reader.number()?;
        let term = if reader.eat(b'd') {
            let count = count.unwrap_or(1);
            let faces = reader
                .number()?
                .ok_or_else(|| malformed("a `d` needs its number of faces: 3d6"))?;
            if count == 0 {
                return Err(malformed("roll at least one die"));
            }
            if !(2..=FACES_MAX).contains(&faces) {
                return Err(too_large(format!("dice have 2 to {FACES_MAX} faces")));
            }
            let keep = if reader.eat(b'k') {
                let highest = if reader.eat(b'h') {
                    true
                } else if reader.eat(b'l') {
                    false
                } else {
                    return Err(malformed("keep the highest (kh) or the lowest (kl)"));
                };
                let n = reader.number()?.unwrap_or(1);
                if n == 0 || n > count {
                    return Err(malformed(format!("keep 1 to {count} of {count} dice")));
                }
                Some(if highest {
                    Keep::Highest(n)
                } else {
                    Keep::Lowest(n)
                })
            } else {
                None
            };
            dice += count;
            if dice > DICE_MAX {
                return Err(too_large(format!("at most {DICE_MAX} dice in one roll")));
            }
            Term::Dice {
                negative,
                count,
                faces,
                keep,
            }
        } else {
            let n = count.ok_or_else(|| malformed("expected a number or dice, e.g. 3d6+2"))?;
            if n > FLAT_MAX {
                return Err(too_large(format!("flat numbers go up to {FLAT_MAX}")));
            }
            Term::Flat(if negative { -(n as i64) } else { n as i64 })
        };
        terms.push(term);
        if terms.len() > TERMS_MAX {
            return Err(too_large(format!("at most {TERMS_MAX} terms")));
        }
        match reader.peek() {
            None => return Ok(Expr { terms }),
            Some(b'+' | b'-') => {}
            Some(other) => {
                return Err(malformed(format!(
                    "unexpected {:?} in a dice expression",
                    other as char
                )));
            }
        }
    }
}

impl Expr {
    /// Rolls every die from `rng`, term by term, die by die; each term as
    /// rolled and the total.
    pub fn roll(&self, rng: &mut Rng) -> (Vec<Rolled>, i64) {
        let rolled: Vec<Rolled> = self.terms.iter().map(|term| term.roll(rng)).collect();
        let total = rolled.iter().map(|r| r.value).sum();
        (rolled, total)
    }
}

impl Term {
    fn roll(&self, rng: &mut Rng) -> Rolled {
        match *self {
            Term::Flat(n) => Rolled {
                term: format!("{n:+}"),
                dice: Vec::new(),
                value: n,
            },
            Term::Dice {
                negative,
                count,
                faces,
                keep,
            } => {
                let dice: Vec<u32> = (0..count).map(|_| rng.roll(faces as u64) as u32).collect();
                let mut sorted = dice.clone();
                sorted.sort_unstable();
                let kept: u32 = match keep {
                    None => sorted.iter().sum(),
                    Some(Keep::Highest(n)) => sorted.iter().rev().take(n as usize).sum(),
                    Some(Keep::Lowest(n)) => sorted.iter().take(n as usize).sum(),
                };
                let keep = match keep {
                    None => String::new(),
                    Some(Keep::Highest(n)) => format!("kh{n}"),
                    Some(Keep::Lowest(n)) => format!("kl{n}"),
                };
                let sign = if negative { "-" } else { "+" };
                Rolled {
                    term: format!("{sign}{count}d{faces}{keep}"),
                    dice,
                    value: if negative {
                        -(kept as i64)
                    } else {
                        kept as i64
                    },
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dice(negative: bool, count: u32, faces: u32, keep: Option<Keep>) -> Term {
        Term::Dice {
            negative,
            count,
            faces,
            keep,
        }
    }

    #[test]
    fn reads_the_usual_expressions() {
        assert_eq!(
            parse("3d6+2").unwrap().terms,
            [dice(false, 3, 6, None), Term::Flat(2)]
        );
        assert_eq!(parse("d20").unwrap().terms, [dice(false, 1, 20, None)]);
        assert_eq!(
            parse(" 2D20 KH1 ").unwrap().terms,
            [dice(false, 2, 20, Some(Keep::Highest(1)))]
        );
        assert_eq!(
            parse("4d6kl3").unwrap().terms,
            [dice(false, 4, 6, Some(Keep::Lowest(3)))]
        );
        assert_eq!(
            parse("1d8-1+1d4").unwrap().terms,
            [
                dice(false, 1, 8, None),
                Term::Flat(-1),
                dice(false, 1, 4, None)
            ]
        );
        assert_eq!(parse("-2d4").unwrap().terms, [dice(true, 2, 4, None)]);
        assert_eq!(
            parse("2d20kh").unwrap().terms,
            [dice(false, 2, 20, Some(Keep::Highest(1)))]
        );
    }

    #[test]
    fn refuses_what_is_not_an_expression() {
        for text in [
            "", "d", "3d", "3x6", "3d6+", "+", "3d6++2", "0d6", "2d20kh3", "2d20kx", "2d20k0",
            "1.5d6", "d6d6", "3d6 2",
        ] {
            assert!(
                matches!(parse(text), Err(DiceError::Malformed(_))),
                "{text:?}"
            );
        }
    }

    #[test]
    fn refuses_absurd_expressions() {
        for text in [
            "100000d100000",
            "101d6",
            "60d6+60d6",
            "1d1",
            "1d1001",
            "1d6+10001",
            "99999999999d6",
            "1+1+1+1+1+1+1+1+1+1+1",
        ] {
            assert!(
                matches!(parse(text), Err(DiceError::TooLarge(_))),
                "{text:?}"
            );
        }
        assert!(matches!(
            parse(&"1".repeat(65)),
            Err(DiceError::TooLarge(_))
        ));
    }

    #[test]
    fn keeps_the_highest_or_lowest() {
        let expr = parse("4d6kh3-1d4kl1+2").unwrap();
        let (rolled, total) = expr.roll(&mut Rng::seeded(9, 0));
        let mut four = rolled[0].dice.clone();
        four.sort();
        let kept: u32 = four[1..].iter().sum();
        assert_eq!(rolled[0].value, kept as i64);
        assert_eq!(rolled[1].value, -(rolled[1].dice[0] as i64));
        assert_eq!(total, rolled[0].value + rolled[1].value + 2);
        assert_eq!(rolled[0].term, "+4d6kh3");
        assert_eq!(rolled[2].term, "+2");
    }
}

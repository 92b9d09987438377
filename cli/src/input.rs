//! Reading a definition from a file or standard input, with clear errors for what is not text.

use std::io::Read;

use virtnet_conf::xml::Pos;

/// The most we read from one input: far above any real domain definition.
pub const MAX_INPUT_BYTES: u64 = 4 << 20;

/// A definition read from somewhere, with the name to use in messages.
pub struct Input {
    /// `FILE`, or `<stdin>` for `-`.
    pub name: String,
    /// The text.
    pub text: String,
}

/// Why an input could not be read as text; printed as `NAME:LINE:COL: message`, or
/// `NAME: message` when it is about the whole input (cannot open, too large).
pub struct InputError {
    /// The input's name.
    pub name: String,
    /// Where the problem is (`None` when it is about the whole input).
    pub pos: Option<Pos>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.pos {
            Some(pos) => write!(
                f,
                "{}:{}:{}: {}",
                self.name, pos.line, pos.col, self.message
            ),
            None => write!(f, "{}: {}", self.name, self.message),
        }
    }
}

/// Reads `path` (`-` is standard input) as UTF-8 text of at most [`MAX_INPUT_BYTES`].
pub fn read_input(path: &str) -> Result<Input, InputError> {
    let name = if path == "-" {
        "<stdin>".to_string()
    } else {
        path.to_string()
    };
    let whole = |message: String| InputError {
        name: name.clone(),
        pos: None,
        message,
    };
    let mut bytes = Vec::new();
    let result = if path == "-" {
        std::io::stdin()
            .lock()
            .take(MAX_INPUT_BYTES + 1)
            .read_to_end(&mut bytes)
    } else {
        match std::fs::File::open(path) {
            Ok(f) => f.take(MAX_INPUT_BYTES + 1).read_to_end(&mut bytes),
            Err(e) => return Err(whole(format!("cannot open: {e}"))),
        }
    };
    if let Err(e) = result {
        return Err(whole(format!("cannot read: {e}")));
    }
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(whole(format!(
            "input is larger than {} MiB; a domain definition is far smaller: is this the right file?",
            MAX_INPUT_BYTES >> 20
        )));
    }
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Input { name, text }),
        Err(e) => {
            let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = 1 + good.iter().filter(|&&b| b == b'\n').count() as u32;
            let col = 1 + good.iter().rev().take_while(|&&b| b != b'\n').count() as u32;
            Err(InputError {
                name,
                pos: Some(Pos { line, col }),
                message: "XML error: input is not UTF-8 text (a binary file?)".into(),
            })
        }
    }
}

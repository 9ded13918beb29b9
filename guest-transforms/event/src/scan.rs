//! [`FieldScanner`]: one pass over an event that validates it as JSON and
//! borrows the values of a few top-level fields.
//!
//! This is the hot path of every plugin and of the host's decode stage, so
//! it is a hand-written byte scanner rather than a serde visitor: skipped
//! values are checked against JSON's grammar (strings and their escapes,
//! numbers, literals, brackets, commas and colons) without building anything,
//! and the wanted values are handed out as borrowed JSON text ([`Raw`]). It
//! accepts exactly what `serde_json::from_slice` accepts for a JSON object
//! (up to 128 nested containers); like serde_json when it skips a value, it
//! does not check the UTF-8 of strings nobody reads (wanted values are
//! checked).

use smallvec::SmallVec;
use std::borrow::Cow;
use std::fmt;

/// Why an event could not be scanned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanError {
    /// The bytes are not valid JSON (what was expected, and where).
    NotJson(String),
    /// Valid JSON, but not an object.
    NotAnObject,
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScanError::NotJson(e) => write!(f, "not valid JSON: {e}"),
            ScanError::NotAnObject => write!(f, "not a JSON object"),
        }
    }
}

impl std::error::Error for ScanError {}

/// Reads a fixed set of top-level fields from events in one pass each.
#[derive(Clone, Debug, Default)]
pub struct FieldScanner {
    names: Vec<String>,
}

/// One JSON value as written in an event (validated by the scan that found
/// it), borrowed from the event's bytes: `"Friday"`, `42`, `{"a":[1]}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Raw<'a>(&'a str);

impl<'a> Raw<'a> {
    /// The value's JSON text.
    pub fn get(&self) -> &'a str {
        self.0
    }

    /// Wraps JSON text the caller has checked (e.g. `"\"2018-08-03\""`).
    /// Text that is not one JSON value makes the readers refuse it, never
    /// misbehave.
    pub fn from_json(text: &'a str) -> Self {
        Self(text)
    }
}

impl std::fmt::Display for Raw<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// The values one scan found, in the order the scanner's names were given.
#[derive(Clone, Debug)]
pub struct Scanned<'a> {
    values: SmallVec<[Option<Raw<'a>>; 8]>,
}

impl<'a> Scanned<'a> {
    /// The value of the `index`-th name, if the event has it.
    pub fn get(&self, index: usize) -> Option<Raw<'a>> {
        self.values.get(index).copied().flatten()
    }

    /// Every name's value, in the scanner's order.
    pub fn values(&self) -> &[Option<Raw<'a>>] {
        &self.values
    }
}

impl FieldScanner {
    /// A scanner for these top-level names (duplicates are kept once).
    pub fn new<'n>(names: impl IntoIterator<Item = &'n str>) -> Self {
        let mut scanner = Self::default();
        for name in names {
            scanner.index_of(name);
        }
        scanner
    }

    /// The index of `name`, adding it if it is new.
    pub fn index_of(&mut self, name: &str) -> usize {
        match self.position(name) {
            Some(i) => i,
            None => {
                self.names.push(name.to_string());
                self.names.len() - 1
            }
        }
    }

    /// The names it reads, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The index of `name` if the scanner reads it.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// Scans one event. The whole document is validated; only the wanted
    /// values are kept, borrowed from `bytes`. A field given twice keeps
    /// its last value, as serde_json does.
    pub fn scan<'a>(&self, bytes: &'a [u8]) -> Result<Scanned<'a>, ScanError> {
        let mut values: SmallVec<[Option<Raw<'a>>; 8]> = SmallVec::from_elem(None, self.names.len());
        let mut c = Cursor { bytes, at: 0 };
        match self.fields(&mut c, &mut values) {
            Ok(true) => Ok(Scanned { values }),
            Ok(false) => Err(ScanError::NotAnObject),
            Err(fault) => Err(fault.into_error(bytes)),
        }
    }

    /// Reads the fields into `values`; false for valid JSON that is not an
    /// object.
    fn fields<'a>(&self, c: &mut Cursor<'a>, values: &mut [Option<Raw<'a>>]) -> Result<bool, Fault> {
        object_members(c, |c, member| {
            if let Some(i) = self.wanted(member.key) {
                values[i] = Some(c.raw_value(member.value_start)?);
            }
            Ok(())
        })
    }

    fn wanted(&self, key: Cow<'_, [u8]>) -> Option<usize> {
        self.names.iter().position(|n| n.as_bytes() == key.as_ref())
    }
}

/// Returns `event` without its top-level field `name` (every occurrence;
/// an event without it comes back unchanged). Members are rejoined with
/// `,`; each member's own text is kept as written.
pub fn remove_field(event: &[u8], name: &str) -> Result<Vec<u8>, ScanError> {
    let mut c = Cursor { bytes: event, at: 0 };
    let members = top_level_members(&mut c).map_err(|fault| fault.into_error(event))?.ok_or(ScanError::NotAnObject)?;
    if !members.iter().any(|m| m.key.as_ref() == name.as_bytes()) {
        return Ok(event.to_vec());
    }
    let mut out = Vec::with_capacity(event.len());
    out.push(b'{');
    for m in members.iter().filter(|m| m.key.as_ref() != name.as_bytes()) {
        if out.len() > 1 {
            out.push(b',');
        }
        out.extend_from_slice(&event[m.span.clone()]);
    }
    out.push(b'}');
    Ok(out)
}

/// One top-level member as [`object_members`] finds it.
struct Member<'a> {
    key: Cow<'a, [u8]>,
    /// Where its text (key to value) is.
    span: std::ops::Range<usize>,
}

/// Where [`object_members`] is in a member, for its callback: the key,
/// where the member starts and where its value starts (the cursor is at the
/// value's end).
struct MemberAt<'a> {
    key: Cow<'a, [u8]>,
    start: usize,
    value_start: usize,
}

/// Validates the event `c` holds to its end, calling `member` for each
/// top-level member of an object; false for valid JSON that is not an
/// object. The one walk both the scanner and the field editor use.
#[inline(always)]
fn object_members<'a>(
    c: &mut Cursor<'a>,
    mut member: impl FnMut(&mut Cursor<'a>, MemberAt<'a>) -> Result<(), Fault>,
) -> Result<bool, Fault> {
    c.skip_whitespace();
    match c.peek() {
        Some(b'{') => c.at += 1,
        Some(b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n') => {
            // Another kind of value: say so only if it is valid JSON.
            c.skip_value(0)?;
            c.skip_whitespace();
            if c.at != c.bytes.len() {
                return Err(c.expected("the end of the event"));
            }
            return Ok(false);
        }
        _ => return Err(c.expected("a JSON object")),
    }
    c.skip_whitespace();
    if c.peek() == Some(b'}') {
        c.at += 1;
    } else {
        loop {
            let start = c.at;
            let key = c.key()?;
            let value_start = c.at;
            c.skip_value(1)?;
            member(c, MemberAt { key, start, value_start })?;
            c.skip_whitespace();
            match c.peek() {
                Some(b',') => {
                    c.at += 1;
                    c.skip_whitespace();
                }
                Some(b'}') => {
                    c.at += 1;
                    break;
                }
                _ => return Err(c.expected("`,` or `}`")),
            }
        }
    }
    c.skip_whitespace();
    if c.at != c.bytes.len() {
        return Err(c.expected("the end of the event after its closing `}`"));
    }
    Ok(true)
}

/// The members of the object `c` holds, or `None` when it is valid JSON
/// but not an object.
fn top_level_members<'a>(c: &mut Cursor<'a>) -> Result<Option<Vec<Member<'a>>>, Fault> {
    let mut members = Vec::new();
    let object = object_members(c, |c, m| {
        members.push(Member { key: m.key, span: m.start..c.at });
        Ok(())
    })?;
    Ok(object.then_some(members))
}

/// The most containers an event may nest (serde_json's recursion limit;
/// it keeps the scanner's container stack in one `u128`).
const MAX_DEPTH: u32 = 128;

/// Bytes a string's body can hold without a closer look: not `"`, not `\`,
/// not a control character.
static PLAIN_IN_STRING: [bool; 256] = {
    let mut table = [true; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = false;
        b += 1;
    }
    table[b'"' as usize] = false;
    table[b'\\' as usize] = false;
    table
};

/// The first byte at or after `at` that ends a string's plain run (`"`,
/// `\\` or a control character), or `bytes.len()`. Sixteen bytes at a time
/// with SIMD where the target has it (x86-64 always; WebAssembly when built
/// with `simd128`, as the guests are: see `.cargo/config.toml`), then eight
/// at a time in a `u64`, then byte by byte.
#[inline(always)]
fn plain_run_end(bytes: &[u8], mut at: usize) -> usize {
    while let Some(chunk) = bytes.get(at..at + 16) {
        match simd::stops(chunk.try_into().expect("sixteen bytes")) {
            0 => at += 16,
            mask => return at + mask.trailing_zeros() as usize,
        }
    }
    // The "has a zero byte" bit trick: a word's lowest flagged byte is
    // exact (higher ones may be false alarms, and are not used).
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let stops = has_zero(word ^ (ONES * b'"' as u64))
            | has_zero(word ^ (ONES * b'\\' as u64))
            | (word.wrapping_sub(ONES * 0x20) & !word & HIGHS);
        if stops != 0 {
            return at + (stops.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    while bytes.get(at).is_some_and(|&b| PLAIN_IN_STRING[b as usize]) {
        at += 1;
    }
    at
}

/// A 16-byte test for the bytes that end a string's plain run: bit `i` of
/// the result is set when `chunk[i]` is `"`, `\\` or below 0x20.
mod simd {
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    pub fn stops(chunk: &[u8; 16]) -> u32 {
        use std::arch::x86_64::*;
        // SAFETY: SSE2 is part of x86-64; the load reads exactly `chunk`.
        unsafe {
            let v = _mm_loadu_si128(chunk.as_ptr().cast());
            let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
            let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
            let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
            _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control)) as u32
        }
    }

    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    #[inline(always)]
    pub fn stops(chunk: &[u8; 16]) -> u32 {
        use std::arch::wasm32::*;
        // SAFETY: the load reads exactly `chunk` (unaligned loads are fine).
        let v = unsafe { v128_load(chunk.as_ptr().cast()) };
        let quote = i8x16_eq(v, u8x16_splat(b'"'));
        let backslash = i8x16_eq(v, u8x16_splat(b'\\'));
        let control = u8x16_lt(v, u8x16_splat(0x20));
        u32::from(i8x16_bitmask(v128_or(v128_or(quote, backslash), control)))
    }

    #[cfg(not(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128"))))]
    #[inline(always)]
    pub fn stops(chunk: &[u8; 16]) -> u32 {
        let mut mask = 0;
        for (i, &b) in chunk.iter().enumerate() {
            if !super::PLAIN_IN_STRING[b as usize] {
                mask |= 1 << i;
            }
        }
        mask
    }
}

/// Where a scan stopped and what it expected there; turned into a message
/// only once, by [`FieldScanner::scan`] (the hot path passes no strings).
#[derive(Clone, Copy)]
struct Fault {
    at: usize,
    expected: &'static str,
}

impl Fault {
    #[cold]
    fn into_error(self, bytes: &[u8]) -> ScanError {
        let what = self.expected;
        ScanError::NotJson(match bytes.get(self.at) {
            None => format!("the event ends at byte {} where {what} should be", self.at),
            Some(&b) => format!("expected {what} at byte {}, found {}", self.at, shown(b)),
        })
    }
}

/// A position in an event. Every method is inlined into the few loops that
/// use it, so the position stays in a register (which matters most inside
/// WebAssembly, where a cursor in memory costs a load and a store per byte).
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    #[inline(always)]
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.at += 1;
        }
    }

    /// `what` was expected at the cursor.
    #[inline(always)]
    fn expected(&self, what: &'static str) -> Fault {
        Fault { at: self.at, expected: what }
    }

    /// Borrows the value from `start` to the cursor (just validated) as
    /// [`Raw`] text, checking its UTF-8.
    fn raw_value(&mut self, start: usize) -> Result<Raw<'a>, Fault> {
        let text = &self.bytes[start..self.at];
        // Most values are short and ASCII: checked inline, without the
        // general validator's call and set-up.
        if text.is_ascii() {
            // SAFETY: ASCII is valid UTF-8.
            return Ok(Raw(unsafe { std::str::from_utf8_unchecked(text) }));
        }
        match std::str::from_utf8(text) {
            Ok(text) => Ok(Raw(text)),
            Err(_) => {
                self.at = start;
                Err(self.expected("a value in valid UTF-8"))
            }
        }
    }

    /// An object key, its `:` and the whitespace after it; the key's text
    /// without quotes (unescaped when it has escapes).
    #[inline(always)]
    fn key(&mut self) -> Result<Cow<'a, [u8]>, Fault> {
        let start = self.at;
        let escaped = self.key_and_colon()?;
        let end = self.bytes[..self.at].iter().rposition(|&b| b == b'"').unwrap_or(start);
        let raw = &self.bytes[start..=end];
        if !escaped {
            return Ok(Cow::Borrowed(&raw[1..raw.len() - 1]));
        }
        match std::str::from_utf8(raw).ok().and_then(|t| serde_json::from_str::<String>(t).ok()) {
            Some(text) => Ok(Cow::Owned(text.into_bytes())),
            None => {
                self.at = start;
                Err(self.expected("a field name that is valid text"))
            }
        }
    }

    /// Skips an object key, its `:` and the whitespace after it; true if
    /// the key has escapes.
    #[inline(always)]
    fn key_and_colon(&mut self) -> Result<bool, Fault> {
        if self.peek() != Some(b'"') {
            return Err(self.expected("a field name in quotes"));
        }
        let escaped = self.string()?;
        self.skip_whitespace();
        if self.peek() != Some(b':') {
            return Err(self.expected("`:` after a field name"));
        }
        self.at += 1;
        self.skip_whitespace();
        Ok(escaped)
    }

    /// A string starting at the cursor's `"`; true if it has escapes.
    #[inline(always)]
    fn string(&mut self) -> Result<bool, Fault> {
        let end = plain_run_end(self.bytes, self.at + 1);
        if self.bytes.get(end) == Some(&b'"') {
            self.at = end + 1;
            return Ok(false);
        }
        self.at = Self::string_rest(self.bytes, end)?;
        Ok(true)
    }

    /// The rest of a string from its first escape (or fault) on. Out of
    /// line, and on a cursor of its own, so the callers' cursor never
    /// leaves its register.
    #[cold]
    #[inline(never)]
    fn string_rest(bytes: &[u8], at: usize) -> Result<usize, Fault> {
        let mut c = Cursor { bytes, at };
        loop {
            match c.peek() {
                Some(b'"') => return Ok(c.at + 1),
                Some(b'\\') => {
                    c.at += 1;
                    c.escape()?;
                }
                None => return Err(c.expected("the string's closing quote")),
                Some(_) => return Err(c.expected("no control characters in a string (escape them)")),
            }
            c.at = plain_run_end(c.bytes, c.at);
        }
    }

    #[inline(always)]
    fn escape(&mut self) -> Result<(), Fault> {
        match self.peek() {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                self.at += 1;
                Ok(())
            }
            Some(b'u') => {
                self.at += 1;
                for _ in 0..4 {
                    if !self.peek().is_some_and(|b| b.is_ascii_hexdigit()) {
                        return Err(self.expected("four hex digits after \\u"));
                    }
                    self.at += 1;
                }
                Ok(())
            }
            _ => Err(self.expected("an escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)")),
        }
    }

    #[inline(always)]
    fn digits(&mut self) -> usize {
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        self.at - start
    }

    #[inline(always)]
    fn number(&mut self) -> Result<(), Fault> {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.expected("a digit")),
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return Err(self.expected("a digit after the decimal point"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            if self.digits() == 0 {
                return Err(self.expected("a digit in the exponent"));
            }
        }
        Ok(())
    }

    #[inline(always)]
    fn literal(&mut self, word: &'static [u8]) -> Result<(), Fault> {
        if self.bytes.get(self.at..self.at + word.len()) == Some(word) {
            self.at += word.len();
            Ok(())
        } else {
            Err(self.expected("a JSON value"))
        }
    }

    /// Skips one value (of any kind), checking its grammar. `depth` is the
    /// nesting the value sits at; containers are tracked on a bit stack
    /// (1 = object) rather than by recursion.
    fn skip_value(&mut self, depth: u32) -> Result<(), Fault> {
        let mut open: u128 = 0;
        let mut nested = 0u32;
        loop {
            // A value is expected here.
            match self.peek() {
                Some(b'"') => {
                    self.string()?;
                }
                Some(b'n') => self.literal(b"null")?,
                Some(b'-' | b'0'..=b'9') => self.number()?,
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b @ (b'{' | b'[')) => {
                    if depth + nested >= MAX_DEPTH {
                        return Err(self.expected("less nesting (the limit is 128 levels)"));
                    }
                    self.at += 1;
                    self.skip_whitespace();
                    let closer = if b == b'{' { b'}' } else { b']' };
                    if self.peek() == Some(closer) {
                        self.at += 1;
                    } else {
                        open = (open << 1) | u128::from(b == b'{');
                        nested += 1;
                        if b == b'{' {
                            self.key_and_colon()?;
                        }
                        continue;
                    }
                }
                _ => return Err(self.expected("a JSON value")),
            }
            // A value ended: close containers until one goes on.
            loop {
                if nested == 0 {
                    return Ok(());
                }
                let in_object = open & 1 == 1;
                self.skip_whitespace();
                match self.peek() {
                    Some(b',') => {
                        self.at += 1;
                        self.skip_whitespace();
                        if in_object {
                            self.key_and_colon()?;
                        }
                        break;
                    }
                    Some(b'}') if in_object => self.at += 1,
                    Some(b']') if !in_object => self.at += 1,
                    _ if in_object => return Err(self.expected("`,` or `}`")),
                    _ => return Err(self.expected("`,` or `]`")),
                }
                open >>= 1;
                nested -= 1;
            }
        }
    }
}

fn shown(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("`{}`", b as char)
    } else {
        format!("byte 0x{b:02x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// serde_json's verdict on the same bytes, skipping every value as a
    /// scan does (so, like a scan, it checks neither the UTF-8 of strings
    /// nor the range of numbers it skips).
    fn serde_verdict(bytes: &[u8]) -> Result<(), ScanError> {
        match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
            Ok(_) if bytes.trim_ascii_start().starts_with(b"{") => Ok(()),
            Ok(_) => Err(ScanError::NotAnObject),
            Err(e) => Err(ScanError::NotJson(e.to_string())),
        }
    }

    fn same_verdict(bytes: &[u8]) {
        let ours = FieldScanner::new(["a", "b"]).scan(bytes).map(|_| ());
        let theirs = serde_verdict(bytes);
        let kind = |r: &Result<(), ScanError>| match r {
            Ok(()) => "ok",
            Err(ScanError::NotAnObject) => "not an object",
            Err(ScanError::NotJson(_)) => "not json",
        };
        assert_eq!(kind(&ours), kind(&theirs), "{:?}: ours {ours:?}, serde_json {theirs:?}", String::from_utf8_lossy(bytes));
    }

    #[test]
    fn agrees_with_serde_json_on_edge_cases() {
        for case in [
            "{}",
            " { } ",
            "{\"a\":1}",
            "{\"a\":-0.5e+3,\"b\":[true,false,null,{}]}",
            "{\"a\":01}",
            "{\"a\":1.}",
            "{\"a\":1e}",
            "{\"a\":-}",
            "{\"a\":.5}",
            "{\"a\":tru}",
            "{\"a\":nul}",
            "{\"a\":[1,]}",
            "{\"a\":[,1]}",
            "{\"a\":1,}",
            "{,}",
            "{\"a\" 1}",
            "{\"a\":1 \"b\":2}",
            "{\"a\":{\"x\"}}",
            "{\"a\":{\"x\":1,}}",
            "{\"a\":[1 2]}",
            "{\"a\":\"\\q\"}",
            "{\"a\":\"\\u12G4\"}",
            "{\"a\":\"\\u00e9\\n\"}",
            "{\"a\":\"tab\there\"}",
            "{\"a\":\"x}",
            "{\"a\":",
            "{\"a\"",
            "{",
            "",
            "   ",
            "[1,2]",
            "\"s\"",
            "12",
            "null",
            "x",
            "{\"a\":1} x",
            "{\"a\":1}}",
            "{\"a\":[}",
            "{\"a\":{]}",
            "{\"a\":[1]]}",
            "{\"\\u0061\":5}",
            "{1:2}",
            "{\"a\":1}\n",
            "\u{feff}{}",
        ] {
            same_verdict(case.as_bytes());
        }
    }

    #[test]
    fn nesting_is_limited_to_128_containers() {
        let nested = |depth: usize| format!("{{\"a\":{}{}}}", "[".repeat(depth), "]".repeat(depth));
        let scanner = FieldScanner::new(["a"]);
        assert!(scanner.scan(nested(127).as_bytes()).is_ok());
        let e = scanner.scan(nested(128).as_bytes()).unwrap_err();
        assert!(e.to_string().contains("less nesting (the limit is 128 levels) at byte 132"), "{e}");
    }

    #[test]
    fn escaped_keys_match_and_last_duplicate_wins() {
        let s = FieldScanner::new(["a"]);
        let found = s.scan(br#"{"\u0061":1,"b":2,"a":3}"#).unwrap();
        assert_eq!(found.get(0).unwrap().get(), "3");
        let found = s.scan(br#"{"\u0061":[1, 2]}"#).unwrap();
        assert_eq!(found.get(0).unwrap().get(), "[1, 2]");
    }

    /// Wanted values are checked as UTF-8 (ASCII on a short path, the rest
    /// by the full validator); skipped ones are not, as with serde_json.
    #[test]
    fn wanted_values_must_be_utf8() {
        let s = FieldScanner::new(["a"]);
        let found = s.scan("{\"a\":\"café ☕\",\"b\":1}".as_bytes()).unwrap();
        assert_eq!(found.get(0).unwrap().get(), "\"café ☕\"");
        assert_eq!(s.scan(br#"{"a":["plain",1]}"#).unwrap().get(0).unwrap().get(), r#"["plain",1]"#);
        let e = s.scan(b"{\"a\":\"caf\xe9\"}").unwrap_err();
        assert_eq!(e.to_string(), "not valid JSON: expected a value in valid UTF-8 at byte 5, found `\"`");
        let e = s.scan(b"{\"a\":[\"ok\",\"\xff\"]}").unwrap_err();
        assert!(e.to_string().contains("a value in valid UTF-8"), "{e}");
        assert!(s.scan(b"{\"b\":\"caf\xe9\",\"a\":1}").is_ok(), "a skipped value is not checked");
    }

    #[test]
    fn errors_say_where() {
        let e = FieldScanner::new(["a"]).scan(b"{\"a\":1,\"b\":tru}").unwrap_err();
        assert_eq!(e.to_string(), "not valid JSON: expected a JSON value at byte 11, found `t`");
        let e = FieldScanner::new(["a"]).scan(b"{\"a\":[1,2").unwrap_err();
        assert_eq!(e.to_string(), "not valid JSON: the event ends at byte 9 where `,` or `]` should be");
    }

    /// Mutations of real events (a byte dropped, changed or inserted) get
    /// the same verdict as serde_json's.
    #[test]
    fn agrees_with_serde_json_on_mutated_events() {
        let event = br#"{"event_date":"20180803","event_timestamp":1533279652346001,"event_params":[{"key":"board","value":{"string_value":"M","int_value":null,"double_value":-1.5e-3}}],"user_pseudo_id":"70\"10","n":[[],{},[{"x":[true,false]}]]}"#;
        same_verdict(event);
        let specials = b"{}[]\",:\\ 0-.eE+tfnu";
        let mut seed = 0x9e3779b97f4a7c15u64;
        let mut random = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for _ in 0..20_000 {
            let mut bytes = event.to_vec();
            for _ in 0..1 + random(3) {
                let at = random(bytes.len());
                let b = specials[random(specials.len())];
                match random(3) {
                    0 => {
                        bytes.remove(at);
                    }
                    1 => bytes[at] = b,
                    _ => bytes.insert(at, b),
                }
            }
            same_verdict(&bytes);
        }
    }
}

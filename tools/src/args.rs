//! A minimal `--key value` / `--flag` parser (keeps the build lean; the CLI is small).

use std::collections::BTreeMap;
use std::str::FromStr;

use anyhow::{bail, Context, Result};

pub struct Args {
    map: BTreeMap<String, Option<String>>,
    used: std::cell::RefCell<Vec<String>>,
}

impl Args {
    /// `flags` are the keys that take no value.
    pub fn parse(argv: &[String], flags: &[&str]) -> Result<Args> {
        let mut map = BTreeMap::new();
        let mut it = argv.iter();
        while let Some(a) = it.next() {
            let Some(key) = a.strip_prefix("--") else { bail!("unexpected argument `{a}`") };
            if let Some((k, v)) = key.split_once('=') {
                map.insert(k.to_string(), Some(v.to_string()));
            } else if flags.contains(&key) {
                map.insert(key.to_string(), None);
            } else {
                let v = it.next().with_context(|| format!("--{key} needs a value"))?;
                map.insert(key.to_string(), Some(v.clone()));
            }
        }
        Ok(Args { map, used: Default::default() })
    }

    pub fn flag(&self, k: &str) -> bool {
        self.used.borrow_mut().push(k.into());
        self.map.contains_key(k)
    }

    pub fn opt<T: FromStr>(&self, k: &str) -> Result<Option<T>>
    where
        T::Err: std::fmt::Display,
    {
        self.used.borrow_mut().push(k.into());
        match self.map.get(k) {
            None => Ok(None),
            Some(None) => bail!("--{k} needs a value"),
            Some(Some(v)) => match v.parse() {
                Ok(x) => Ok(Some(x)),
                Err(e) => bail!("--{k} {v}: {e}"),
            },
        }
    }

    pub fn get<T: FromStr>(&self, k: &str, default: T) -> Result<T>
    where
        T::Err: std::fmt::Display,
    {
        Ok(self.opt(k)?.unwrap_or(default))
    }

    pub fn req<T: FromStr>(&self, k: &str) -> Result<T>
    where
        T::Err: std::fmt::Display,
    {
        self.opt(k)?.with_context(|| format!("--{k} is required"))
    }

    /// Marks keys as expected (read later, e.g. by the export step).
    pub fn finish_keys(&self, keys: &[&str]) {
        self.used.borrow_mut().extend(keys.iter().map(|k| k.to_string()));
    }

    /// Rejects keys nobody asked for (typos must not be silently ignored).
    pub fn finish(&self) -> Result<()> {
        let used = self.used.borrow();
        for k in self.map.keys() {
            if !used.contains(k) {
                bail!("unknown option --{k}");
            }
        }
        Ok(())
    }
}

/// "1,2,4" or "1-8" or a mix: "1-3,8". Each in 1..=8, deduplicated, in the given order.
pub fn parse_bits(s: &str) -> Result<Vec<u8>> {
    let mut v = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<u8>()?, b.trim().parse::<u8>()?),
            None => {
                let x = part.parse::<u8>().with_context(|| format!("bad width `{part}`"))?;
                (x, x)
            }
        };
        if !(1..=8).contains(&a) || !(1..=8).contains(&b) || a > b {
            bail!("width range `{part}` must lie in 1..=8");
        }
        for x in a..=b {
            if !v.contains(&x) {
                v.push(x);
            }
        }
    }
    if v.is_empty() {
        bail!("no widths in `{s}`");
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits() {
        assert_eq!(parse_bits("1-3,8").unwrap(), vec![1, 2, 3, 8]);
        assert_eq!(parse_bits("8,4,2,1").unwrap(), vec![8, 4, 2, 1]);
        assert!(parse_bits("0").is_err());
        assert!(parse_bits("9").is_err());
        assert!(parse_bits("5-3").is_err());
        assert!(parse_bits("").is_err());
    }

    #[test]
    fn unknown_keys_are_errors() {
        let argv: Vec<String> = ["--a", "1", "--typo", "2"].iter().map(|s| s.to_string()).collect();
        let a = Args::parse(&argv, &[]).unwrap();
        assert_eq!(a.get("a", 0u32).unwrap(), 1);
        assert!(a.finish().is_err());
        assert!(Args::parse(&["--a".to_string()], &[]).is_err());
    }
}

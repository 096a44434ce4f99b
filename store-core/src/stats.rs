//! [`Stats`]: what the components of a stack report about themselves, for operators.

use std::fmt;

/// Figures from every component of a stack, from the top down (see
/// [`Storage::stats`](crate::Storage::stats)).
///
/// ```
/// use store_core::{ComponentStats, Figure, Stats};
/// let mut stats = Stats::default();
/// stats.components.push(ComponentStats::new("cache", "").with("hits", Figure::Count(3)));
/// assert_eq!(stats.get("cache", "hits"), Some(&Figure::Count(3)));
/// assert_eq!(stats.to_string(), "cache: hits=3");
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    /// One entry per component that has figures, the top of the stack first.
    pub components: Vec<ComponentStats>,
}

impl Stats {
    /// The figure `name` of the first component called `component`.
    ///
    /// ```
    /// assert_eq!(store_core::Stats::default().get("file", "segments"), None);
    /// ```
    pub fn get(&self, component: &str, name: &str) -> Option<&Figure> {
        self.components
            .iter()
            .find(|c| c.name == component)?
            .figures
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, figure)| figure)
    }

    /// Puts `component` on top (a layer adds its own figures above its inner store's).
    ///
    /// ```
    /// use store_core::{ComponentStats, Stats};
    /// let mut stats = Stats::default();
    /// stats.push_front(ComponentStats::new("file", "/data"));
    /// stats.push_front(ComponentStats::new("cache", ""));
    /// assert_eq!(stats.components[0].name, "cache");
    /// ```
    pub fn push_front(&mut self, component: ComponentStats) {
        self.components.insert(0, component);
    }
}

impl fmt::Display for Stats {
    /// One line per component: `name detail: figure=value ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, component) in self.components.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{component}")?;
        }
        Ok(())
    }
}

/// The figures of one component of a stack.
///
/// ```
/// use store_core::{ComponentStats, Figure};
/// let file = ComponentStats::new("file", "/var/lib/orders").with("segments", Figure::Count(4));
/// assert_eq!(file.to_string(), "file /var/lib/orders: segments=4");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ComponentStats {
    /// What the component is: `cache`, `namespace`, `memory`, `file`, `redis`, ...
    pub name: String,
    /// What tells this instance apart (a directory, an address, a namespace); may be empty.
    pub detail: String,
    /// Named figures, in a stable order.
    pub figures: Vec<(String, Figure)>,
}

impl ComponentStats {
    /// A component with no figures yet.
    ///
    /// ```
    /// let c = store_core::ComponentStats::new("memory", "");
    /// assert!(c.figures.is_empty());
    /// ```
    pub fn new(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            detail: detail.into(),
            figures: Vec::new(),
        }
    }

    /// Adds a figure.
    ///
    /// ```
    /// use store_core::{ComponentStats, Figure};
    /// let c = ComponentStats::new("cache", "").with("hit_ratio", Figure::Ratio(0.5));
    /// assert_eq!(c.figures.len(), 1);
    /// ```
    #[must_use]
    pub fn with(mut self, name: impl Into<String>, figure: Figure) -> Self {
        self.figures.push((name.into(), figure));
        self
    }
}

impl fmt::Display for ComponentStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if !self.detail.is_empty() {
            write!(f, " {}", self.detail)?;
        }
        f.write_str(":")?;
        for (name, figure) in &self.figures {
            write!(f, " {name}={figure}")?;
        }
        Ok(())
    }
}

/// One figure of a component.
///
/// ```
/// use store_core::Figure;
/// assert_eq!(Figure::Bytes(2048).to_string(), "2048B");
/// assert_eq!(Figure::Ratio(0.25).to_string(), "0.250");
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Figure {
    /// A count of things or events.
    Count(u64),
    /// A size in bytes.
    Bytes(u64),
    /// A share between 0 and 1.
    Ratio(f64),
    /// A duration in microseconds.
    Micros(u64),
    /// Anything else, as text.
    Text(String),
}

impl Figure {
    /// The figure as a number, when it is one (`Text` is not).
    ///
    /// ```
    /// assert_eq!(store_core::Figure::Count(7).as_f64(), Some(7.0));
    /// ```
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Figure::Count(n) | Figure::Bytes(n) | Figure::Micros(n) => Some(n as f64),
            Figure::Ratio(r) => Some(r),
            Figure::Text(_) => None,
        }
    }
}

impl fmt::Display for Figure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Figure::Count(n) => write!(f, "{n}"),
            Figure::Bytes(n) => write!(f, "{n}B"),
            Figure::Ratio(r) => write!(f, "{r:.3}"),
            Figure::Micros(n) => write!(f, "{n}us"),
            Figure::Text(text) => f.write_str(text),
        }
    }
}

//! The static HTML page: run summary, leaderboard table and the charts (or notes in their
//! place). Self-contained apart from the PNGs next to it; every text is escaped.

use crate::model::ReportData;
use crate::text::num;
use std::fmt::Write;

/// One section of the page below the leaderboard.
pub(crate) struct Section {
    /// Heading.
    pub title: String,
    /// What the section shows.
    pub body: SectionBody,
}

/// A chart or a note in its place.
pub(crate) enum SectionBody {
    /// A PNG next to the page.
    Image {
        /// File name relative to the page.
        file: String,
        /// Alternative text.
        alt: String,
        /// Pixel size.
        size: (u32, u32),
        /// Caption below the image.
        caption: String,
    },
    /// Text instead of a chart.
    Note(String),
}

/// Escapes text for element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em auto;max-width:1300px;color:#222;padding:0 1em}\
table{border-collapse:collapse;font-size:14px}\
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}\
th{background:#f0f0f0}\
td.text{text-align:left}\
td.error{text-align:left;color:#a33;max-width:420px;overflow-wrap:anywhere}\
tr.zero td{color:#888}\
figure{margin:1em 0}\
img{max-width:100%;height:auto;border:1px solid #ddd}\
.note{background:#fff7e0;border-left:4px solid #e0a800;padding:.6em 1em}\
.meta{color:#555}";

/// The whole page.
pub(crate) fn page(data: &ReportData, sections: &[Section]) -> String {
    let mut h = String::new();
    let run = &data.run;
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        escape(&data.title),
        escape(&data.title)
    );
    let _ = writeln!(
        h,
        "<p class=\"meta\">Run {} · GFS init {} · status <b>{}</b>{} · generated {}</p>",
        run.run_id,
        escape(&run.gfs_init),
        escape(&run.status),
        if run.test_mode { " · test mode" } else { "" },
        escape(&run.generated_at)
    );
    h.push_str("<h2>Leaderboard</h2>\n<table id=\"leaderboard\">\n<thead><tr>");
    for col in [
        "rank",
        "uid",
        "miner",
        "hotkey",
        "status",
        "Day1",
        "ERA5 combined",
        "completeness",
        "overall",
        "weight",
        "last error",
    ] {
        let _ = write!(h, "<th>{col}</th>");
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for m in data.ranked() {
        let zero = m.weight.is_none_or(|w| w <= 0.0);
        let _ = writeln!(
            h,
            "<tr data-uid=\"{}\"{}><td>{}</td><td>{}</td><td class=\"text\">{}</td>\
             <td class=\"text\" title=\"{}\">{}</td><td class=\"text\">{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"error\">{}</td></tr>",
            m.uid,
            if zero { " class=\"zero\"" } else { "" },
            m.rank.map(|r| r.to_string()).unwrap_or_else(|| "-".into()),
            m.uid,
            escape(m.label.as_deref().unwrap_or("")),
            escape(&m.hotkey),
            escape(&crate::text::clip(&m.hotkey, 12)),
            escape(&m.status),
            num(m.day1),
            num(m.era5_combined),
            crate::text::fraction(m.completeness),
            num(m.overall),
            num(m.weight),
            escape(m.last_error.as_deref().unwrap_or(""))
        );
    }
    h.push_str("</tbody>\n</table>\n");
    for s in sections {
        let _ = writeln!(h, "<h2>{}</h2>", escape(&s.title));
        match &s.body {
            SectionBody::Image {
                file,
                alt,
                size,
                caption,
            } => {
                let _ = writeln!(
                    h,
                    "<figure><img src=\"{}\" alt=\"{}\" width=\"{}\" height=\"{}\">\
                     <figcaption>{}</figcaption></figure>",
                    escape(file),
                    escape(alt),
                    size.0,
                    size.1,
                    escape(caption)
                );
            }
            SectionBody::Note(text) => {
                let _ = writeln!(h, "<p class=\"note\">{}</p>", escape(text));
            }
        }
    }
    if !data.notes.is_empty() {
        h.push_str("<h2>Notes</h2>\n<ul>\n");
        for n in &data.notes {
            let _ = writeln!(h, "<li>{}</li>", escape(n));
        }
        h.push_str("</ul>\n");
    }
    h.push_str("</body>\n</html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
    }
}

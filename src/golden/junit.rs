//! A JUnit XML report of golden cases, the format CI systems read: one `testsuite`, a
//! `testcase` per case, with a `failure` (the diff) or an `error` (why it could not run).

use super::{CaseResult, Outcome};

/// The report of `results`.
pub fn junit(results: &[CaseResult]) -> String {
    let count = |f: fn(&Outcome) -> bool| results.iter().filter(|r| f(&r.outcome)).count();
    let failures = count(|o| matches!(o, Outcome::Fail(_)));
    let errors = count(|o| matches!(o, Outcome::Error(_)));
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"switchboard golden\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\">\n",
        results.len()
    );
    for result in results {
        let name = escape(&result.name);
        match &result.outcome {
            Outcome::Pass | Outcome::Updated => {
                out.push_str(&format!("  <testcase classname=\"golden\" name=\"{name}\"/>\n"));
            }
            Outcome::Fail(diff) => out.push_str(&format!(
                "  <testcase classname=\"golden\" name=\"{name}\">\n    <failure message=\"the transcript differs from expected.txt\">{}</failure>\n  </testcase>\n",
                escape(diff)
            )),
            Outcome::Error(e) => out.push_str(&format!(
                "  <testcase classname=\"golden\" name=\"{name}\">\n    <error message=\"{}\"/>\n  </testcase>\n",
                escape(e)
            )),
        }
    }
    out.push_str("</testsuite>\n");
    out
}

/// `text` safe in XML text and attribute values; characters XML 1.0 cannot hold are dropped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_become_testcases_with_failures_and_errors_escaped() {
        let results = vec![
            CaseResult {
                name: "chat".to_owned(),
                outcome: Outcome::Pass,
            },
            CaseResult {
                name: "rooms".to_owned(),
                outcome: Outcome::Fail("-c1 < 42[\"a\"]\n+c1 < 42[\"b\"]\n".to_owned()),
            },
            CaseResult {
                name: "bad & <odd>".to_owned(),
                outcome: Outcome::Error("no steps.txt\u{1}".to_owned()),
            },
        ];
        let xml = junit(&results);
        assert!(
            xml.contains(r#"tests="3" failures="1" errors="1""#),
            "{xml}"
        );
        assert!(xml.contains(r#"<testcase classname="golden" name="chat"/>"#));
        assert!(xml.contains("-c1 &lt; 42[&quot;a&quot;]\n+c1 &lt; 42[&quot;b&quot;]"));
        assert!(xml.contains(r#"name="bad &amp; &lt;odd&gt;""#));
        assert!(xml.contains(r#"<error message="no steps.txt"/>"#), "{xml}");
    }
}

//! Writes the `vpn-daemon(8)` man page: the synopsis and options from the
//! clap definition (`vpn_daemon::cli`), then `docs/directives.md` rendered
//! to roff. Run by `cargo xtask package`:
//! `cargo run -p vpn-daemon --example manpage -- OUT.8 [DIRECTIVES.md]`.

use std::{fs, path::PathBuf};

use anyhow::{Context, Result};
use pulldown_cmark::{Event, HeadingLevel, Parser, Tag, TagEnd};
use roff::{Inline, Roff, bold, italic, roman};

fn main() -> Result<()> {
    let mut args = std::env::args_os().skip(1);
    let out = PathBuf::from(
        args.next()
            .context("usage: manpage OUT.8 [DIRECTIVES.md]")?,
    );
    let md_path = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/directives.md"));
    let md =
        fs::read_to_string(&md_path).with_context(|| format!("reading {}", md_path.display()))?;

    let man = clap_mangen::Man::new(vpn_daemon::cli::command())
        .section("8")
        .manual("System Administration");
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    page.extend_from_slice(markdown_to_roff(&md).render().as_bytes());
    page.extend_from_slice(
        Roff::new()
            .control("SH", ["SEE ALSO"])
            .text([roman(
                "openvpn(8), systemctl(1); the units vpn-daemon-server@.service and \
                 vpn-daemon-client@.service read /etc/openvpn/server and /etc/openvpn/client.",
            )])
            .render()
            .as_bytes(),
    );
    man.render_version_section(&mut page)?;
    fs::write(&out, page).with_context(|| format!("writing {}", out.display()))?;
    println!("{}", out.display());
    Ok(())
}

/// Markdown to man(7): `#` and `##` become sections, deeper headings
/// subsections, list items indented paragraphs, code blocks no-fill
/// blocks, table rows tagged paragraphs.
fn markdown_to_roff(md: &str) -> Roff {
    let mut roff = Roff::new();
    let mut line: Vec<Inline> = Vec::new();
    let mut heading: Option<HeadingLevel> = None;
    let mut heading_text = String::new();
    let mut bold_depth = 0u32;
    let mut italic_depth = 0u32;
    let mut in_code_block = false;
    let mut cell = 0usize;
    let flush = |roff: &mut Roff, line: &mut Vec<Inline>| {
        if !line.is_empty() {
            roff.text(std::mem::take(line));
        }
    };
    for ev in Parser::new_ext(md, pulldown_cmark::Options::ENABLE_TABLES) {
        match ev {
            Event::Start(Tag::Heading { level, .. }) => {
                flush(&mut roff, &mut line);
                heading = Some(level);
                heading_text.clear();
            }
            Event::End(TagEnd::Heading(_)) => {
                let text = heading_text.trim().to_string();
                match heading.take() {
                    Some(HeadingLevel::H1 | HeadingLevel::H2) => {
                        roff.control("SH", [text.to_uppercase().as_str()])
                    }
                    _ => roff.control("SS", [text.as_str()]),
                };
            }
            // Inside a table cell a paragraph continues the cell.
            Event::Start(Tag::Paragraph) if cell == 0 => flush(&mut roff, &mut line),
            Event::End(TagEnd::Paragraph) => {
                flush(&mut roff, &mut line);
                roff.control("PP", [] as [&str; 0]);
            }
            Event::Start(Tag::Item) => {
                flush(&mut roff, &mut line);
                roff.control("IP", ["\\(bu", "2"]);
            }
            Event::End(TagEnd::Item) => flush(&mut roff, &mut line),
            Event::End(TagEnd::List(_)) => {
                flush(&mut roff, &mut line);
                roff.control("PP", [] as [&str; 0]);
            }
            Event::Start(Tag::CodeBlock(_)) => {
                flush(&mut roff, &mut line);
                roff.control("nf", [] as [&str; 0]);
                roff.control("RS", ["4"]);
                in_code_block = true;
            }
            Event::End(TagEnd::CodeBlock) => {
                flush(&mut roff, &mut line);
                roff.control("RE", [] as [&str; 0]);
                roff.control("fi", [] as [&str; 0]);
                roff.control("PP", [] as [&str; 0]);
                in_code_block = false;
            }
            // A row is a tagged paragraph: the first cell (the directive)
            // is the tag, the other cells its text.
            Event::Start(Tag::TableRow) | Event::Start(Tag::TableHead) => {
                flush(&mut roff, &mut line);
                roff.control("TP", [] as [&str; 0]);
                cell = 0;
            }
            Event::End(TagEnd::TableRow) | Event::End(TagEnd::TableHead) => {
                flush(&mut roff, &mut line);
                cell = 0;
            }
            Event::Start(Tag::TableCell) => {
                if cell > 1 {
                    line.push(roman(" | "));
                }
                cell += 1;
            }
            Event::End(TagEnd::TableCell) if cell == 1 => flush(&mut roff, &mut line),
            Event::End(TagEnd::Table) => {
                flush(&mut roff, &mut line);
                roff.control("PP", [] as [&str; 0]);
            }
            Event::Start(Tag::Strong) => bold_depth += 1,
            Event::End(TagEnd::Strong) => bold_depth = bold_depth.saturating_sub(1),
            Event::Start(Tag::Emphasis) => italic_depth += 1,
            Event::End(TagEnd::Emphasis) => italic_depth = italic_depth.saturating_sub(1),
            Event::Text(t) if heading.is_some() => heading_text.push_str(&t),
            Event::Code(t) if heading.is_some() => heading_text.push_str(&t),
            Event::Text(t) if in_code_block => {
                for l in t.lines() {
                    roff.text([roman(l)]);
                }
            }
            Event::Text(t) => line.push(if bold_depth > 0 {
                bold(t.as_ref())
            } else if italic_depth > 0 {
                italic(t.as_ref())
            } else {
                roman(t.as_ref())
            }),
            Event::Code(t) => line.push(bold(t.as_ref())),
            Event::SoftBreak => line.push(roman(" ")),
            Event::HardBreak => line.push(Inline::LineBreak),
            _ => {}
        }
    }
    flush(&mut roff, &mut line);
    roff
}

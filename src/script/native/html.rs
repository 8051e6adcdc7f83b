//! The natives behind `k6/html`: `parseHTML` and `Response.html()`. A
//! parsed document lives here, in the realm's slab, under the handle its
//! JavaScript object holds (freed when that object is collected, as cookie
//! jars are); a selection is a list of node numbers in document order
//! (0 is the document itself). The owner of the `scraper` crate.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use rquickjs::{Ctx, Function, Object};
use scraper::node::Node;
use scraper::{ElementRef, Html, Selector};

use super::handles::Handles;
use super::throw;

/// Documents a realm's VUs may hold at once (each VU usually holds one
/// response's at a time; they are freed when collected).
const MAX_DOCUMENTS: usize = 1024;
/// Largest text `parseHTML` takes: a response body larger than this is
/// not a page a load test reads.
const MAX_SOURCE: usize = 16 << 20;
/// Longest CSS selector accepted.
const MAX_SELECTOR: usize = 4096;

/// One parsed document and its nodes in document order.
struct Document {
    html: Html,
    order: Vec<ego_tree::NodeId>,
    number: HashMap<ego_tree::NodeId, u32>,
}

impl Document {
    fn parse(source: &str) -> Document {
        let html = Html::parse_document(source);
        let order: Vec<ego_tree::NodeId> = html.tree.root().descendants().map(|n| n.id()).collect();
        let number = order
            .iter()
            .enumerate()
            .map(|(i, id)| (*id, u32::try_from(i).unwrap_or(u32::MAX)))
            .collect();
        Document {
            html,
            order,
            number,
        }
    }

    /// An element's tag name; `#document` for the document.
    fn name(&self, n: u32) -> String {
        if n == 0 {
            return "#document".to_owned();
        }
        let node = self
            .order
            .get(n as usize)
            .and_then(|id| self.html.tree.get(*id));
        match node.map(|node| node.value()) {
            Some(Node::Element(e)) => e.name().to_owned(),
            _ => String::new(),
        }
    }

    fn element(&self, n: u32) -> Option<ElementRef<'_>> {
        let id = *self.order.get(n as usize)?;
        ElementRef::wrap(self.html.tree.get(id)?)
    }

    fn number_of(&self, e: ElementRef<'_>) -> Option<u32> {
        self.number.get(&e.id()).copied()
    }

    /// Sorted, without repeats: a selection in document order.
    fn numbers<'a>(&self, elements: impl Iterator<Item = ElementRef<'a>>) -> Vec<u32> {
        let mut out: Vec<u32> = elements.filter_map(|e| self.number_of(e)).collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The elements `nodes` name; the document itself stands for its root
    /// element's parent (every element is below it).
    fn find(&self, nodes: &[u32], selector: &Selector) -> Vec<u32> {
        let mut found = Vec::new();
        for &n in nodes {
            if n == 0 {
                found.extend(self.html.select(selector));
            } else if let Some(e) = self.element(n) {
                found.extend(e.select(selector));
            }
        }
        self.numbers(found.into_iter())
    }

    fn children(&self, nodes: &[u32]) -> Vec<u32> {
        let mut found = Vec::new();
        for &n in nodes {
            if n == 0 {
                found.push(self.html.root_element());
            } else if let Some(e) = self.element(n) {
                found.extend(e.child_elements());
            }
        }
        self.numbers(found.into_iter())
    }

    fn parents(&self, nodes: &[u32]) -> Vec<u32> {
        let parents = nodes
            .iter()
            .filter_map(|&n| self.element(n)?.parent().and_then(ElementRef::wrap));
        self.numbers(parents)
    }

    /// Element siblings of each node: `next`, `prev`, `nextAll`,
    /// `prevAll` or `siblings` (both ways).
    fn siblings(&self, nodes: &[u32], which: &str) -> Vec<u32> {
        let mut found = Vec::new();
        for e in nodes.iter().filter_map(|&n| self.element(n)) {
            let after = e.next_siblings().filter_map(ElementRef::wrap);
            let before = e.prev_siblings().filter_map(ElementRef::wrap);
            match which {
                "next" => found.extend(after.take(1)),
                "prev" => found.extend(before.take(1)),
                "nextAll" => found.extend(after),
                "prevAll" => found.extend(before),
                _ => found.extend(after.chain(before)),
            }
        }
        self.numbers(found.into_iter())
    }

    /// For each node, itself or its nearest ancestor that matches.
    fn closest(&self, nodes: &[u32], selector: &Selector) -> Vec<u32> {
        let found = nodes.iter().filter_map(|&n| {
            let e = self.element(n)?;
            std::iter::once(e)
                .chain(e.ancestors().filter_map(ElementRef::wrap))
                .find(|a| selector.matches(a))
        });
        self.numbers(found)
    }

    fn matching(&self, nodes: &[u32], selector: &Selector) -> Vec<u32> {
        nodes
            .iter()
            .copied()
            .filter(|&n| self.element(n).is_some_and(|e| selector.matches(&e)))
            .collect()
    }

    fn text(&self, nodes: &[u32]) -> String {
        let mut out = String::new();
        for &n in nodes {
            if n == 0 {
                out.extend(self.html.root_element().text());
            } else if let Some(e) = self.element(n) {
                out.extend(e.text());
            }
        }
        out
    }

    fn inner_html(&self, n: u32) -> Option<String> {
        if n == 0 {
            return Some(self.html.html());
        }
        Some(self.element(n)?.inner_html())
    }

    /// What a form field holds, as k6's `Selection.val()` reads it: an
    /// input's `value` (else `on` for a checkbox or radio, else empty), a
    /// button's `value`, a textarea's inner HTML, an option's `value` (else
    /// its inner HTML), and a select's options marked `selected` (the
    /// caller takes the first unless the select is `multiple`); `None` for
    /// anything else.
    fn value(&self, n: u32) -> Option<Vec<String>> {
        let e = self.element(n)?;
        let value_or_html = |o: ElementRef<'_>| {
            o.attr("value")
                .map_or_else(|| o.inner_html(), str::to_owned)
        };
        let one = |s: String| Some(vec![s]);
        match e.value().name() {
            "input" => match (e.attr("value"), e.attr("type")) {
                (Some(v), _) => one(v.to_owned()),
                (None, Some("radio" | "checkbox")) => one("on".to_owned()),
                (None, _) => one(String::new()),
            },
            "button" => one(e.attr("value").unwrap_or_default().to_owned()),
            "textarea" => one(e.inner_html()),
            "option" => one(value_or_html(e)),
            "select" => Some(
                e.descendent_elements()
                    .filter(|d| d.value().name() == "option" && d.attr("selected").is_some())
                    .map(value_or_html)
                    .collect(),
            ),
            _ => None,
        }
    }
}

/// The documents of one realm, by handle.
type Shared = Rc<RefCell<Handles<Document>>>;

/// Runs `f` on document `handle`; a handle that names none (never from
/// `js/html.js`) is a JavaScript error.
fn with_doc<'js, R>(
    ctx: &Ctx<'js>,
    docs: &Shared,
    handle: u32,
    f: impl FnOnce(&Document) -> R,
) -> rquickjs::Result<R> {
    match docs.borrow().get(handle) {
        Some(d) => Ok(f(d)),
        None => Err(throw(ctx, "this HTML document was freed")),
    }
}

/// The selector `text` is, or `None` (said once on stderr): as in k6,
/// whose goquery matches nothing with a selector it cannot compile, a bad
/// selector selects nothing rather than failing the iteration.
fn selector(text: &str) -> Option<Selector> {
    let parsed = if text.len() > MAX_SELECTOR {
        Err(format!(
            "{} bytes, more than the {MAX_SELECTOR} accepted",
            text.len()
        ))
    } else {
        Selector::parse(text).map_err(|e| e.to_string())
    };
    match parsed {
        Ok(s) => Some(s),
        Err(e) => {
            static WARNED: std::sync::atomic::AtomicBool =
                std::sync::atomic::AtomicBool::new(false);
            if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                let shown: String = text.chars().take(80).collect();
                eprintln!(
                    "WARN: k6/html: invalid CSS selector {shown:?} ({e}) selects nothing (shown once)"
                );
            }
            None
        }
    }
}

/// Installs native `$name`: `(handle, args…)`, `$body` run on the
/// handle's document (a freed one is a JavaScript error).
macro_rules! on_document {
    ($v:expr, $ctx:expr, $docs:expr, $name:literal, |$doc:ident $(, $arg:ident: $ty:ty)*| $body:expr) => {{
        let docs = Rc::clone($docs);
        $v.set(
            $name,
            Function::new($ctx.clone(), move |ctx: Ctx<'js>, h: u32 $(, $arg: $ty)*| {
                with_doc(&ctx, &docs, h, |$doc| $body)
            })?,
        )?;
    }};
}

pub(super) fn install<'js>(ctx: &Ctx<'js>, v: &Object<'js>) -> rquickjs::Result<()> {
    let docs: Shared = Rc::new(RefCell::new(Handles::new(MAX_DOCUMENTS)));

    let d = Rc::clone(&docs);
    v.set(
        "htmlParse",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, source: String| {
            if source.len() > MAX_SOURCE {
                return Err(throw(
                    &ctx,
                    &format!(
                        "parseHTML: {} bytes of HTML; at most {MAX_SOURCE} are parsed",
                        source.len()
                    ),
                ));
            }
            let doc = Document::parse(&source);
            d.borrow_mut().add(doc).ok_or_else(|| {
                throw(
                    &ctx,
                    &format!("more than {MAX_DOCUMENTS} parsed HTML documents alive at once; keep only the selections you need"),
                )
            })
        })?,
    )?;
    let d = Rc::clone(&docs);
    v.set(
        "htmlFree",
        Function::new(ctx.clone(), move |handle: u32| {
            d.borrow_mut().release(handle)
        })?,
    )?;
    // A bad selector selects nothing (see `selector`).
    on_document!(
        v,
        ctx,
        &docs,
        "htmlFind",
        |doc, nodes: Vec<u32>, sel: String| {
            selector(&sel).map_or_else(Vec::new, |s| doc.find(&nodes, &s))
        }
    );
    on_document!(
        v,
        ctx,
        &docs,
        "htmlFilter",
        |doc, nodes: Vec<u32>, sel: String| {
            selector(&sel).map_or_else(Vec::new, |s| doc.matching(&nodes, &s))
        }
    );
    on_document!(
        v,
        ctx,
        &docs,
        "htmlClosest",
        |doc, nodes: Vec<u32>, sel: String| {
            selector(&sel).map_or_else(Vec::new, |s| doc.closest(&nodes, &s))
        }
    );
    on_document!(
        v,
        ctx,
        &docs,
        "htmlSiblings",
        |doc, nodes: Vec<u32>, which: String| { doc.siblings(&nodes, &which) }
    );
    on_document!(v, ctx, &docs, "htmlChildren", |doc, nodes: Vec<u32>| doc
        .children(&nodes));
    on_document!(v, ctx, &docs, "htmlParent", |doc, nodes: Vec<u32>| doc
        .parents(&nodes));
    on_document!(v, ctx, &docs, "htmlText", |doc, nodes: Vec<u32>| doc
        .text(&nodes));
    on_document!(v, ctx, &docs, "htmlInner", |doc, n: u32| doc.inner_html(n));
    on_document!(v, ctx, &docs, "htmlValue", |doc, n: u32| doc.value(n));
    on_document!(v, ctx, &docs, "htmlAttr", |doc, n: u32, name: String| {
        doc.element(n)
            .and_then(|e| e.attr(&name).map(str::to_owned))
    });
    on_document!(v, ctx, &docs, "htmlAttrs", |doc, n: u32| {
        doc.element(n).map_or_else(Vec::new, |e| {
            e.value()
                .attrs()
                .map(|(k, v)| vec![k.to_owned(), v.to_owned()])
                .collect::<Vec<_>>()
        })
    });
    on_document!(v, ctx, &docs, "htmlName", |doc, n: u32| doc.name(n));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"<html><head><title>T</title></head><body>
        <form id="login"><input name="csrf" value="tok-1"><input name="user">
        <select name="lang"><option value="en">English</option><option selected>Deutsch</option></select>
        <textarea name="note">hello</textarea></form>
        <ul><li class="a">one</li><li>two</li><li class="a">three</li></ul></body></html>"#;

    fn doc() -> Document {
        Document::parse(PAGE)
    }

    fn sel(s: &str) -> Selector {
        Selector::parse(s).expect("a valid selector")
    }

    #[test]
    fn find_gives_document_order_without_repeats() {
        let d = doc();
        let lis = d.find(&[0], &sel("li"));
        assert_eq!(lis.len(), 3);
        assert!(lis.windows(2).all(|w| w[0] < w[1]));
        // Found from the list and from the document: the same three.
        let ul = d.find(&[0], &sel("ul"));
        let both = [ul.clone(), vec![0]].concat();
        assert_eq!(d.find(&both, &sel("li")), lis);
        assert_eq!(d.text(&d.matching(&lis, &sel(".a"))), "onethree");
        assert_eq!(d.parents(&lis), ul);
        assert_eq!(d.children(&ul), lis);
        assert_eq!(d.siblings(&lis[..1], "next"), lis[1..2]);
        assert_eq!(d.siblings(&lis[2..], "prevAll"), lis[..2]);
        assert_eq!(d.siblings(&lis[1..2], "siblings"), [lis[0], lis[2]]);
        assert_eq!(d.closest(&lis, &sel("ul")), ul);
        assert_eq!(d.closest(&lis[..1], &sel("li")), lis[..1]);
    }

    #[test]
    fn form_fields_read_as_k6_reads_them() {
        let d = doc();
        let value = |s: &str| d.find(&[0], &sel(s)).first().and_then(|&n| d.value(n));
        let one = |s: &str| Some(vec![s.to_owned()]);
        assert_eq!(value("input[name=csrf]"), one("tok-1"));
        assert_eq!(value("input[name=user]"), one(""));
        assert_eq!(value("select"), one("Deutsch"));
        assert_eq!(value("textarea"), one("hello"));
        assert_eq!(value("li"), None);
    }

    #[test]
    fn attributes_and_inner_html() {
        let d = doc();
        let form = d.find(&[0], &sel("form"))[0];
        assert_eq!(d.element(form).and_then(|e| e.attr("id")), Some("login"));
        let li = d.find(&[0], &sel("li"))[1];
        assert_eq!(d.inner_html(li).as_deref(), Some("two"));
        assert!(
            d.inner_html(0)
                .is_some_and(|h| h.contains("<title>T</title>"))
        );
    }

    #[test]
    fn a_bad_or_oversized_selector_selects_nothing() {
        assert!(selector("li[").is_none());
        assert!(selector(&"li ".repeat(MAX_SELECTOR)).is_none());
        assert!(selector("form > input[name=csrf]").is_some());
    }

    proptest::proptest! {
        /// Whatever a server sends, parsing and reading it never panics.
        #[test]
        fn any_text_parses_and_reads(source in "(<[a-z/!]{0,3}[^<>]{0,12}>?|[^<]{0,8}){0,40}") {
            let d = Document::parse(&source);
            let all = d.find(&[0], &sel("*"));
            let _ = d.text(&all);
            for &n in all.iter().take(50) {
                let _ = (d.value(n), d.inner_html(n), d.siblings(&[n], "siblings"));
            }
            let _ = (d.children(&all), d.parents(&all), d.closest(&all, &sel("div")));
        }
    }
}

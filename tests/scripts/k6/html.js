// Covers: k6/html's parseHTML and Response.html(): find, filter, is, not,
// has, children, parent, first/last/eq/slice, get, toArray, each (elements),
// map (selections), attr with a default, text, html, and val() of inputs,
// selects and textareas, as a login form's CSRF token is read.
import http from 'k6/http';
import { parseHTML } from 'k6/html';
import { check } from 'k6';
export const options = {
  iterations: 1,
  thresholds: { checks: ['rate==1'] },
};
const PAGE = `<html><head><title>Sign in</title></head><body>
<form id="login" action="/session"><input type="hidden" name="csrf" value="tok-42"><input name="user">
<select name="lang"><option value="en">English</option><option value="de" selected>Deutsch</option></select>
<textarea name="note">hi there</textarea></form>
<ul id="items"><li class="a" data-n="1">one</li><li>two</li><li class="a" data-n="3">three</li></ul>
<a href="/next">next</a></body></html>`;
export default function () {
  const doc = parseHTML(PAGE);
  check(doc, {
    'csrf token': (d) => d.find('input[name=csrf]').attr('value') === 'tok-42',
    'val of input': (d) => d.find('input[name=csrf]').val() === 'tok-42',
    'val of select': (d) => d.find('select').val() === 'de',
    'val of textarea': (d) => d.find('textarea').val() === 'hi there',
    'title text': (d) => d.find('title').text() === 'Sign in',
    'size': (d) => d.find('li').size() === 3,
    'filter and text': (d) => d.find('li').filter('.a').text() === 'onethree',
    'eq and html': (d) => d.find('li').eq(1).html() === 'two',
    'last': (d) => d.find('li').last().attr('data-n') === '3',
    'first attr default': (d) => d.find('li').eq(1).attr('data-n', 'none') === 'none',
    'children': (d) => d.find('ul').children().size() === 3 && d.find('ul').children('.a').size() === 2,
    'parent': (d) => d.find('li').parent().attr('id') === 'items',
    'is': (d) => d.find('li').first().is('.a') && !d.find('li').eq(1).is('.a'),
    'map selections': (d) => d.find('li').map((i, s) => s.text() + i).join(',') === 'one0,two1,three2',
    'slice not has': (d) => d.find('li').slice(1).size() === 2 && d.find('li').not('.a').text() === 'two' && d.find('form').has('textarea').size() === 1,
    'get all': (d) => d.find('li').get().length === 3,
    'each elements': (d) => { const ns = []; d.find('li.a').each((i, el) => ns.push(el.getAttribute('data-n'))); return ns.join() === '1,3'; },
    'get element': (d) => d.find('a').get(0).getAttribute('href') === '/next' && d.find('a').get(0).nodeName().toLowerCase() === 'a',
    'toArray': (d) => d.find('li').toArray().length === 3 && d.find('li').toArray()[2].text() === 'three',
    'missing attr': (d) => d.find('li').eq(1).attr('class') === undefined,
    'empty selection': (d) => d.find('table').size() === 0 && d.find('table').text() === '',
  });
  const r = http.get(`${__ENV.TARGET_URL}/headers`);
  check(r, { 'response html': (x) => x.html().find('body').size() === 1 });
}

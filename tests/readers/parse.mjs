// Prints what @rowanmanning/feed-parser reads in a feed, as JSON (the shape gofeed.go prints).
//
// Run by tests/test_readers_other_ecosystems.py after `npm ci --prefix tests/readers`.
// Usage: node parse.mjs [FILE...]: one JSON line per FILE, or one for stdin without arguments.
// Each line: {"type", "count", "items": [{"id", "link", "title", "published", "updated"}]},
// dates in UTC ISO 8601 ("" when the parser found none); {"error": ...} if unreadable.
import { readFileSync } from 'node:fs';
import { parseFeed } from '@rowanmanning/feed-parser';

const instant = (date) => (date ? date.toISOString() : '');

function read(text) {
	try {
		const feed = parseFeed(text);
		const items = feed.items.map((item) => ({
			id: item.id ?? '',
			link: item.url ?? '',
			title: item.title ?? '',
			published: instant(item.published),
			updated: instant(item.updated),
		}));
		return { type: feed.meta.type, count: items.length, items };
	} catch (error) {
		return { error: String(error), count: 0, items: [] };
	}
}

const paths = process.argv.slice(2);
const texts = paths.length
	? paths.map((path) => readFileSync(path, 'utf8'))
	: [readFileSync(0, 'utf8')];
process.stdout.write(texts.map((text) => `${JSON.stringify(read(text))}\n`).join(''));

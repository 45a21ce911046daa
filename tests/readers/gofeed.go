// Command gofeed prints what Go's gofeed (github.com/mmcdole/gofeed) reads in a feed, as JSON.
//
// Built offline by tests/test_readers_other_ecosystems.py against Debian's
// golang-github-mmcdole-gofeed-dev (GOPATH=/usr/share/gocode, GO111MODULE=off).
// Usage: gofeed [FILE...]: one JSON line per FILE, or one for stdin without arguments.
// Each line: {"type", "count", "items": [{"id", "link", "title", "published", "updated"}]},
// dates in UTC RFC 3339 to the nanosecond ("" when gofeed found none), or {"error": ...}
// if gofeed cannot read the feed.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/mmcdole/gofeed"
)

type item struct {
	ID        string `json:"id"`
	Link      string `json:"link"`
	Title     string `json:"title"`
	Published string `json:"published"`
	Updated   string `json:"updated"`
}

type result struct {
	Type  string `json:"type,omitempty"`
	Count int    `json:"count"`
	Items []item `json:"items"`
	Error string `json:"error,omitempty"`
}

func instant(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func read(input io.Reader) result {
	feed, err := gofeed.NewParser().Parse(input)
	if err != nil {
		return result{Error: err.Error(), Items: []item{}}
	}
	out := result{Type: feed.FeedType, Count: len(feed.Items), Items: []item{}}
	for _, it := range feed.Items {
		out.Items = append(out.Items, item{
			ID:        it.GUID,
			Link:      it.Link,
			Title:     it.Title,
			Published: instant(it.PublishedParsed),
			Updated:   instant(it.UpdatedParsed),
		})
	}
	return out
}

func main() {
	writer := bufio.NewWriter(os.Stdout)
	defer writer.Flush()
	encoder := json.NewEncoder(writer)
	encoder.SetEscapeHTML(false)
	if len(os.Args) < 2 {
		encoder.Encode(read(os.Stdin))
		return
	}
	for _, path := range os.Args[1:] {
		file, err := os.Open(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		encoder.Encode(read(file))
		file.Close()
	}
}

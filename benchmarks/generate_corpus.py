"""Generate a realistic seed corpus of any size, in the shape of the real seed files.

The real files (../shared/realworld, seeds/) are YAML front matter between
`---` lines: quoted and bare strings, ISO dates, nested provider/images/related
mappings, a long base64 `secured` blob, about a third drafts, curly quotes and
the odd mojibake. This generator reproduces that shape and variety
deterministically (same size and seed → same bytes), so benchmark runs compare.

    python benchmarks/generate_corpus.py --size 100000 --out benchmarks/corpora/100000
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import sys
import time
from pathlib import Path

# Topic taxonomy of the real corpus, with Zipf-like weights (AI is on most articles).
TOPICS = [
    ("Machine Learning", 30),
    ("Computer Vision", 22),
    ("Natural Language Processing", 14),
    ("Google AI", 12),
    ("Microsoft AI", 11),
    ("AWS AI", 9),
    ("Deep Learning", 9),
    ("Facebook AI", 7),
    ("IBM AI", 6),
    ("AI in Healthcare", 6),
    ("AI in Autos", 5),
    ("AI Hardware", 5),
    ("Apple AI", 4),
    ("Robotics", 4),
    ("Face Recognition", 4),
    ("AI Ethics", 3),
    ("Speech Recognition", 3),
    ("Chatbots", 3),
    ("Edge AI", 2),
    ("AI in Finance", 2),
    ("Reinforcement Learning", 2),
    ("Quantum Computing", 2),
    ("AI Startups", 2),
    ("Generative AI", 2),
    ("Data Science", 2),
    ("AI Policy", 1),
    ("AI in Retail", 1),
    ("Künstliche Intelligenz", 1),
    ("人工知能", 1),
]
PROVIDERS = [
    ("VentureBeat", "venturebeat.com"),
    ("PR Newswire", "prnewswire.com"),
    ("Hackaday", "hackaday.com"),
    ("MIT Technology Review", "technologyreview.com"),
    ("ZDNet", "zdnet.com"),
    ("TechCrunch", "techcrunch.com"),
    ("The Washington Post", "washingtonpost.com"),
    ("Business Wire", "businesswire.com"),
    ("Phys.org", "phys.org"),
    ("Medical Xpress", "medicalxpress.com"),
    ("New Scientist", "newscientist.com"),
    ("Wall Street Journal", "wsj.com"),
    ("Chicago Tribune", "chicagotribune.com"),
    ("Associated Press", "apnews.com"),
    ("USA Today", "usatoday.com"),
    ("CNN", "cnn.com"),
    ("Fox Business", "foxbusiness.com"),
    ("Khaleej Times", "khaleejtimes.com"),
    ("The Next Web", "thenextweb.com"),
    ("Mint", "livemint.com"),
    ("Reuters", "reuters.com"),
    ("Science Daily", "sciencedaily.com"),
    ("Medium", "medium.com"),
    ("아크로팬", "acrofan.com"),
    ("Design News", "designnews.com"),
    ("InvestorPlace", "investorplace.com"),
    ("The Daily Dot", "dailydot.com"),
    ("CRN", "crn.com"),
    ("Patently-O", "patentlyo.com"),
    ("Ferret Australia's Manufacturing Industrial and Mining Directory", "ferret.com.au"),
]
WORDS = [
    "ai",
    "model",
    "data",
    "neural",
    "network",
    "learning",
    "deep",
    "vision",
    "language",
    "speech",
    "robot",
    "cloud",
    "chip",
    "startup",
    "research",
    "study",
    "team",
    "system",
    "platform",
    "launch",
    "new",
    "open",
    "source",
    "training",
    "inference",
    "bias",
    "privacy",
    "regulation",
    "face",
    "recognition",
    "self-driving",
    "car",
    "healthcare",
    "drug",
    "discovery",
    "accuracy",
    "benchmark",
    "dataset",
    "edge",
    "device",
    "gpu",
    "accelerator",
    "partnership",
    "funding",
    "market",
    "report",
    "growth",
    "analysis",
    "enterprise",
    "search",
    "semantic",
    "translation",
    "assistant",
    "chatbot",
    "agent",
    "policy",
    "government",
    "police",
    "city",
    "lawmakers",
    "company",
    "developers",
    "tool",
    "framework",
    "library",
    "release",
    "quantum",
    "computing",
    "finance",
    "retail",
    "fraud",
    "detection",
    "medical",
    "imaging",
    "cancer",
    "brain",
    "scientists",
]
IMAGE_EXT = [".jpg", ".jpg", ".jpg", ".png", ".jpeg", ".webp", ""]


class Writer:
    """One deterministic article generator; `n` picks everything about article n."""

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.seed = seed
        self.topic_names = [name for name, _ in TOPICS]
        self.topic_weights = [weight for _, weight in TOPICS]
        # More providers in bigger corpora, as in real life; Zipf-weighted.
        extra = [
            (f"{word.title()} {kind}", f"{word}{kind.lower()}.example.com")
            for word in WORDS[: max(0, min(len(WORDS), size // 500))]
            for kind in ("Times", "Daily", "Insider")
        ]
        self.providers = PROVIDERS + extra
        self.provider_weights = [1 / (rank + 1) for rank in range(len(self.providers))]

    def sentence(self, rng: random.Random, low: int, high: int) -> str:
        words = [rng.choice(WORDS) for _ in range(rng.randint(low, high))]
        text = " ".join(words)
        return text[0].upper() + text[1:]

    def date(self, rng: random.Random) -> str:
        # 2015..2021, newer years denser, like the real archive.
        year = rng.choices(range(2015, 2022), weights=[1, 1, 2, 3, 5, 8, 13])[0]
        return (
            f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            f"T{rng.randint(0, 23):02d}:{rng.choice((0, 0, 15, 20, 30, 47)):02d}:00Z"
        )

    def quoted(self, rng: random.Random, text: str) -> str:
        if rng.random() < 0.6 or ":" in text or text[:1] in "'\"&*!|>%@`#[{":
            return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return text

    def url(self, rng: random.Random, domain: str, n: int, slug: str) -> str:
        return f"https://www.{domain}/{rng.randint(2015, 2021)}/{rng.randint(1, 12):02d}/{slug}-{n}"

    def image(self, rng: random.Random, domain: str, indent: str, title: str | None) -> list[str]:
        token = "".join(rng.choices("abcdefghijklmnopqrstuvwxyz0123456789_-", k=rng.randint(8, 40)))
        url = f"https://images.{domain}/wp-content/uploads/{token}{rng.choice(IMAGE_EXT)}"
        if rng.random() < 0.3:
            url += f"?w={rng.choice((600, 1200))}&strip=all"
        lines = [
            f'{indent}- url: "{url}"',
            f"{indent}  width: {rng.choice((50, 600, 640, 796, 1024, 1200, 1440))}",
            f"{indent}  height: {rng.choice((50, 338, 398, 600, 628, 675, 1075))}",
        ]
        if title and rng.random() < 0.3:
            lines.append(f"{indent}  title: {self.quoted(rng, title)}")
        if rng.random() < 0.5:
            lines.append(f"{indent}  isCached: true")
        return lines

    def article(self, n: int) -> tuple[str, bytes]:
        rng = random.Random(self.seed * 1_000_003 + n)
        title = self.sentence(rng, 5, 16)
        if rng.random() < 0.1:
            title = title.replace(" ", " \u2019", 1)  # curly quotes, as pasted from the web
        if rng.random() < 0.01:
            title += " \u00e2\u20ac\u2122s"  # mojibake the cleaner repairs
        slug = "-".join(title.lower().split()[:8]).replace("\u2019", "")
        provider, domain = rng.choices(self.providers, weights=self.provider_weights)[0]
        link = self.url(rng, domain, n, slug)
        if rng.random() < 0.004 and n > 10:
            link = self.url(random.Random(self.seed * 1_000_003 + n - 7), domain, n - 7, slug)
        published_at = self.date(rng)
        lines = [
            "---",
            "category: news",
            f"title: {self.quoted(rng, title)}",
            f"excerpt: {self.quoted(rng, self.sentence(rng, 20, 45) + ' ...')}",
            f"publishedDateTime: {published_at}",
        ]
        if rng.random() < 0.45:
            lines.append(f'originalUrl: "{link}"')
        lines.append(f'webUrl: "{link}"' if rng.random() < 0.7 else f"webUrl: {link}")
        if rng.random() < 0.45:
            lines.append(f'ampWebUrl: "{link}/amp/"')
            lines.append(
                f'cdnAmpWebUrl: "https://www-{domain.replace(".", "-")}.cdn.ampproject.org'
                f'/c/s/www.{domain}/{slug}-{n}/amp/"'
            )
        lines.append("type: article")
        if rng.random() < 0.85:
            quality = rng.randint(5, 110)
            lines += [f"quality: {quality}", f"heat: {quality + rng.randint(-10, 30)}"]
        draw = rng.random()
        if draw < 0.3:
            lines.append("published: false")
        elif draw < 0.9:
            lines.append("published: true")
        if rng.random() < 0.005:
            lines[4] = "publishedDateTime: sometime last week"  # a real-world broken file
        lines += ["", "provider:", f"  name: {self.quoted(rng, provider)}", f"  domain: {domain}"]
        if rng.random() < 0.2:
            lines.append("  images:")
            lines += self.image(rng, domain, "    ", None)
        topics = ["AI"] if rng.random() < 0.85 else []
        for topic in rng.choices(self.topic_names, self.topic_weights, k=rng.randint(0, 3)):
            if topic not in topics:
                topics.append(topic)
        if not topics:
            topics = ["AI"]
        lines += ["", "topics:"] + [f"  - {topic}" for topic in topics]
        if rng.random() < 0.7:
            lines += ["", "images:", *self.image(rng, domain, "  ", title)]
        if rng.random() < 0.2:
            lines += ["", "related:"]
            for index in range(rng.randint(1, 3)):
                rel_provider, rel_domain = rng.choices(
                    self.providers, weights=self.provider_weights
                )[0]
                rel_title = self.sentence(rng, 5, 14)
                rel_link = self.url(rng, rel_domain, n * 10 + index, "related")
                lines += [
                    f"  - title: {self.quoted(rng, rel_title)}",
                    f"    excerpt: {self.quoted(rng, self.sentence(rng, 15, 40))}",
                    f"    publishedDateTime: {self.date(rng)}",
                    f"    webUrl: {rel_link}",
                    "    type: article",
                    "    provider:",
                    f"      name: {self.quoted(rng, rel_provider)}",
                    f"      domain: {rel_domain}",
                    f"    quality: {rng.randint(5, 100)}",
                    "    images:",
                    *self.image(rng, rel_domain, "      ", None),
                ]
        secret = base64.b64encode(rng.randbytes(rng.randint(300, 500))).decode()
        lines += ["", f'secured: "{secret};{base64.b64encode(rng.randbytes(16)).decode()}"', "---"]
        if rng.random() < 0.1:
            lines.append(self.sentence(rng, 30, 80))  # a body after the front matter
        if rng.random() < 0.5:
            name = f"{published_at[:10]}-{slug[:90]}-{n}.md"
        else:
            name = f"{n:06d}_{rng.getrandbits(64):016x}.txt"
        return name, ("\n".join(lines) + "\n").encode("utf-8")


def generate(out: Path, size: int, seed: int = 1) -> Path:
    """Write `size` seed files into `out` (created; must be empty or absent)."""
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise SystemExit(f"{out} is not empty")
    writer = Writer(size, seed)
    for n in range(size):
        name, data = writer.article(n)
        with open(out / name, "wb") as handle:
            handle.write(data)
    return out


def ensure_corpus(root: Path, size: int, seed: int = 1) -> Path:
    """A cached corpus under `root/<size>-<seed>`; generated once, then reused."""
    target = root / f"{size}-{seed}"
    marker = target / ".complete"
    if marker.exists():
        return target
    partial = root / f".{size}-{seed}.partial-{os.getpid()}"
    generate(partial, size, seed)
    marker_tmp = partial / ".complete"
    marker_tmp.write_text(str(size))
    if target.exists():
        import shutil

        shutil.rmtree(target)
    os.replace(partial, target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    generate(args.out, args.size, args.seed)
    print(f"wrote {args.size} files to {args.out} in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

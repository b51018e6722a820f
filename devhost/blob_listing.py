"""A container listing that a blob name storage cannot list does not stop.

Azurite answers 500 to a listing page that holds a name XML cannot carry (a NUL, most other control characters),
and to a listing whose marker or prefix holds one; it does not encode such names as Azure does. So one such blob
would hide every blob after it, scan after scan. Azurite continues a listing after the name given as its marker:
a failing page is listed again in growing steps up to the blob that breaks it; then the part of its name storage
can carry is found one character at a time, each by listing the names that go on with it (a failing listing means
an unlistable name goes on so); where none does, a control character comes next. The listing goes on after the
names that hold a control character there: they cannot be listed, so nothing that can is skipped. What was skipped
is reported as exactly as storage allows: the part of the name before the control character.

Limits: a range found is trusted for a minute, so a blob uploaded meanwhile into a skipped range waits until then.
Where the unlistable name goes on with a character beyond ASCII, the listing stops there and says after which
name it fails.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import HttpResponseError
from azure.storage.blob import ContainerClient

PAGE = 5000
MAX_NAME = 1024  # Azure's longest blob name
MAX_PROBES = 20_000  # a search that needs more is not finding a name: storage fails for some other reason
OUTAGE_PROBES = 8  # failed probes in a row, none answered, that make a failing container an outage
RECHECK_S = 60.0  # how long a range found after a marker is trusted before it is looked for again
TOP = "\ufffd"  # the greatest character a marker can carry (Azurite compares UTF-16 code units)
# The ASCII characters a marker or prefix can carry (XML 1.0), in the order Azurite sorts them.
LISTABLE_ASCII = "\t\n\r" + "".join(chr(c) for c in range(0x20, 0x80))


@dataclass(frozen=True)
class Listed:
    name: str
    etag: str


@dataclass(frozen=True)
class Unlisted:
    """Blobs storage cannot list: each name starts with ``prefix``, then a control character."""

    prefix: str
    etag = "unlisted"  # none can be read

    @property
    def name(self) -> str:
        """How such a blob is named where its full name cannot be: its known part, then U+FFFD."""
        return f"{self.prefix}\ufffd"

    @property
    def reason(self) -> str:
        return (f"storage cannot list a blob whose name starts with {self.prefix!r} followed by a control character, "
                "so the host can read neither its full name nor its content; delete it and upload it under a name "
                "without control characters")


class ListingBroken(Exception):
    """The listing fails after ``marker`` and no range of names could be found to skip."""

    def __init__(self, container: str, marker: str) -> None:
        super().__init__(f"listing container {container!r} fails after {marker or '(its start)'!r}: the name of "
                         "the blob after it holds a character storage listings cannot carry (a control character), "
                         "and the host cannot tell where; delete or rename that blob")


def _fails_on_a_name(error: HttpResponseError) -> bool:
    """Storage answered, and failed on the page itself (as a name it cannot serialise makes it)."""
    return error.status_code == 500


class ResilientListing:
    """The blobs of one container under one prefix, in name order, past names that break a listing page."""

    def __init__(self, container: ContainerClient, prefix: str = "", **request: Any) -> None:
        self.container = container
        self.prefix = prefix
        self.request = request  # keyword arguments for every storage call (tracing options)
        # The last name listed before names that cannot be -> the range skipped, the marker after it, when found.
        self._found: dict[str, tuple[Unlisted, str, float]] = {}

    def __iter__(self) -> Iterator[Listed | Unlisted]:
        token = last = ""  # storage's own continuation token (opaque on Azure Storage); the last name listed
        while True:
            try:
                names, following = self.page(token, PAGE)
            except HttpResponseError as error:
                if not _fails_on_a_name(error):
                    raise
                # Past a failed page the listing goes on from names, as Azurite reads its markers.
                after = yield from self._past_failure(last)
                if after is None:
                    return
                token = last = after
                continue
            yield from names
            if following is None or not names:
                return
            token, last = following, names[-1].name

    def page(self, marker: str, size: int, prefix: str | None = None) -> tuple[list[Listed], str | None]:
        """Up to ``size`` blobs after ``marker`` (under ``prefix``, else the listing's), and the continuation token
        of the next page (None: the last)."""
        # No retries: a page that fails on a name fails every time, and the search asks hundreds of them.
        pages = self.container.list_blobs(name_starts_with=(prefix or self.prefix) or None, results_per_page=size,
                                          retry_total=0, **self.request).by_page(continuation_token=marker or None)
        page = next(pages, None)
        names = [Listed(b.name, b.etag.strip('"')) for b in page] if page is not None else []
        following = getattr(pages, "continuation_token", None)  # a PageIterator, typed as Iterator
        return names, str(following) if following else None

    def _past_failure(self, marker: str) -> Generator[Listed | Unlisted, None, str | None]:
        """List from ``marker`` in growing steps up to the blob that fails, yield what was skipped and return the
        marker after it; None when the rest lists after all."""
        step = 1
        while True:
            try:
                names, following = self.page(marker, step)
            except HttpResponseError as error:
                if not _fails_on_a_name(error):
                    raise
                if step > 1:
                    step //= 2
                    continue
                skipped, after = self._skip_after(marker)
                yield skipped
                exact = self._exactly(after)  # the marker is a name that is not skipped: is it a blob?
                if exact is not None:
                    yield exact
                return after
            yield from names
            if following is None or not names:
                return None
            marker, step = names[-1].name, min(step * 2, PAGE)

    def _skip_after(self, marker: str) -> tuple[Unlisted, str]:
        known = self._found.get(marker)
        if known is not None and time.monotonic() - known[2] < RECHECK_S:
            return known[0], known[1]
        skipped, after = _Search(self, marker).run()
        self._found[marker] = (skipped, after, time.monotonic())
        return skipped, after

    def _exactly(self, name: str) -> Listed | None:
        try:
            properties = self.container.get_blob_client(name).get_blob_properties(**self.request)
        except HttpResponseError:  # not found, or a name no URL can carry: nothing to list there
            return None
        return Listed(name, str(properties.etag).strip('"'))


class _Search:
    """Where the names right after ``marker`` that no listing can show go: their listable part, one character at a
    time, until a control character must come next; and the marker after all the names that hold one there."""

    def __init__(self, listing: ResilientListing, marker: str) -> None:
        self.listing = listing
        self.marker = marker
        self.probes = 0
        self.answered = 0  # probes storage answered; when none is, storage is failing, not one name

    def run(self) -> tuple[Unlisted, str]:
        known = self.listing.prefix
        for _ in range(MAX_NAME):
            going_on = self._going_on(known)
            if going_on is None:
                break
            character, listable = going_on
            if not listable:  # an unlistable name goes on with it: look further along
                known += character
                continue
            # Only names with a control character after ``known`` sort before ``known + character``.
            return Unlisted(known), known + character
        else:
            raise ListingBroken(self.listing.container.container_name, self.marker)
        # No name goes on with an ASCII character: a control character comes next, unless one beyond ASCII does,
        # which the search cannot follow. A listable first name beyond ASCII shows which.
        after = known + LISTABLE_ASCII[-1] + TOP
        if after <= self.marker or self._first_after(after, known) is False:
            raise ListingBroken(self.listing.container.container_name, self.marker)
        return Unlisted(known), after

    def _going_on(self, known: str) -> tuple[str, bool] | None:
        """The first ASCII character a name after the marker goes on with after ``known``, and whether the first
        such name can be listed; None when no name goes on with one."""
        for character in LISTABLE_ASCII:
            outcome = self._first(known + character)
            if outcome is not None:
                return character, outcome
        return None

    def _first(self, prefix: str) -> bool | None:
        """Whether the first name after the marker that starts with ``prefix`` can be listed; None: there is none."""
        if prefix + TOP <= self.marker:
            return None  # every such name sorts before the marker
        return self._first_after(self.marker, prefix)

    def _first_after(self, marker: str, prefix: str) -> bool | None:
        self.probes += 1
        if self.probes > MAX_PROBES:
            raise ListingBroken(self.listing.container.container_name, self.marker)
        try:
            names, _ = self.listing.page(marker, 1, prefix)
        except HttpResponseError as error:
            if not _fails_on_a_name(error) or (self.answered == 0 and self.probes >= OUTAGE_PROBES):
                raise  # every page fails, whatever it holds: an outage, which the caller reports as one
            return False
        self.answered += 1
        return True if names else None

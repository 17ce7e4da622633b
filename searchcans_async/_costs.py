"""What each call costs in credits, as API.md documents it (and configurable where it is not)."""

from __future__ import annotations

import attrs

__all__ = ["Costs"]


@attrs.frozen
class Costs:
    """The credit price list the client and the lane pool reserve against.

    Defaults follow SearchCans' documentation: a SERP page costs 1 credit (``pages=N``
    costs N); a Reader call costs 2, plus 0/2/5/10 for proxy tiers 0-3. The prices of
    browser mode, captcha solving, file reading and screenshots are undocumented and
    default to 0 extra: set them if your plan bills them. Whether "no results" (code 9999)
    is billed is undocumented too; the default assumes it is not.

    Example:
        >>> costs = Costs()
        >>> costs.search(pages=3), costs.read(proxy=1)
        (3, 4)
        >>> Costs(reader_browser=1).read(browser=True)
        3
    """

    search_page: int = 1
    reader_base: int = 2
    reader_proxy: tuple[int, int, int, int] = (0, 2, 5, 10)
    reader_browser: int = 0
    reader_captcha: int = 0
    reader_file: int = 0
    reader_image: int = 0
    no_results_charged: bool = False

    def search(self, pages: int = 1) -> int:
        """Credits for one SERP call fetching ``pages`` pages."""
        return self.search_page * pages

    def read(
        self,
        proxy: int = 0,
        *,
        browser: bool = False,
        captcha: bool = False,
        file: bool = False,
        image: int = 0,
    ) -> int:
        """Credits for one Reader call with these options."""
        if not 0 <= proxy < len(self.reader_proxy):
            raise ValueError(f"proxy must be 0-3, got {proxy!r}")
        return (
            self.reader_base
            + self.reader_proxy[proxy]
            + (self.reader_browser if browser else 0)
            + (self.reader_captcha if captcha else 0)
            + (self.reader_file if file else 0)
            + (self.reader_image if image else 0)
        )

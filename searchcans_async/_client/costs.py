"""What each call costs in credits, as API.md documents it (and configurable where it is not)."""

from __future__ import annotations

import attrs

__all__ = ["Costs"]


def _is_price(value: object) -> bool:
    return type(value) is int and value >= 0


def _price(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not _is_price(value):
        raise ValueError(f"{attribute.name} must be a whole number of credits >= 0, got {value!r}")


def _tier_prices(
    _instance: object,
    attribute: attrs.Attribute[tuple[int, int, int, int]],
    value: tuple[int, int, int, int],
) -> None:
    prices: tuple[object, ...] = value  # a caller may pass any tuple at run time
    if len(prices) != 4 or not all(_is_price(v) for v in prices):
        raise ValueError(f"{attribute.name} must be 4 prices >= 0 (tiers 0-3), got {value!r}")


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

    search_page: int = attrs.field(default=1, validator=_price)
    reader_base: int = attrs.field(default=2, validator=_price)
    reader_proxy: tuple[int, int, int, int] = attrs.field(
        default=(0, 2, 5, 10), validator=_tier_prices
    )
    reader_browser: int = attrs.field(default=0, validator=_price)
    reader_captcha: int = attrs.field(default=0, validator=_price)
    reader_file: int = attrs.field(default=0, validator=_price)
    reader_image: int = attrs.field(default=0, validator=_price)
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

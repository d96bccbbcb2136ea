"""Mailbox providers: which provider a recipient's domain belongs to.

The default table is spec/events.md "Mailbox providers". The scoring model owns
the table an installation actually uses (``seqscore.scoring.model``); ingest
takes the lookup as a parameter so that either a plain mapping or the model's
own function can be passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

#: A domain -> provider table (keys lower-case), or a function from a lower-case
#: domain to its provider. A mapping's unknown domains are their own provider.
ProviderLookup = Mapping[str, str] | Callable[[str], str]

_PROVIDER_DOMAINS: dict[str, tuple[str, ...]] = {
    "gmail": ("gmail.com", "googlemail.com"),
    "microsoft": (
        "outlook.com", "hotmail.com", "live.com", "msn.com", "hotmail.co.uk", "live.co.uk",
        "outlook.fr", "hotmail.fr",
    ),
    "yahoo": (
        "yahoo.com", "ymail.com", "rocketmail.com", "aol.com", "aim.com", "yahoo.co.uk",
        "yahoo.fr", "yahoo.co.jp",
    ),
    "apple": ("icloud.com", "me.com", "mac.com"),
}

#: The spec's default table: lower-case domain -> provider.
DEFAULT_PROVIDERS: Mapping[str, str] = MappingProxyType(
    {domain: provider for provider, domains in _PROVIDER_DOMAINS.items() for domain in domains}
)


def provider_function(providers: ProviderLookup) -> Callable[[str], str]:
    """Return a function mapping a lower-case domain to its provider.

    A mapping is looked up as is (keys are expected lower-case); a domain it does
    not list is its own provider. A callable is returned unchanged.
    """
    if isinstance(providers, Mapping):
        table = providers

        def lookup(domain: str) -> str:
            return table.get(domain, domain)

        return lookup
    return providers

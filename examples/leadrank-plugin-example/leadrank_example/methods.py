"""A method living outside leadrank-bench: engagement-weighted recency."""

import numpy as np

from leadrank_api import Inputs, Method, register


@register(name="example_engagement", family="rule", tables=("table1", "table2"),
          description="Example plugin: configurator + price-page views, then recency")
class Engagement(Method):
    def inputs(self, schema):
        return Inputs(("configurator_sessions", "days_since_last_activity", "price_page_views"))

    def fit(self, train, valid):
        return self

    def score(self, test):
        views = sum(np.nan_to_num(test.numeric(c)) for c in ("configurator_sessions", "price_page_views"))
        return np.log1p(views) - 0.01 * np.nan_to_num(test.numeric("days_since_last_activity"))

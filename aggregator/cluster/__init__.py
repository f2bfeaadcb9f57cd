"""Articles -> stories with stable ids. Pure: no I/O.

The steps, one module each:

1. ``features``: word TF-IDF over the title plus the lead of the text and the words of the URL's
   path (a second headline many sites write), the title weighted up, beside character n-grams of
   the title (they match "taper"/"tapering", "UniCredit"/"Unicredit");
2. ``neighbours``: each vector borrows a little of its close neighbours' vectors (smoothing), so
   two headlines that share no word but share neighbours ("Mt. Gox files" / "bitcoin exchange
   seeks bankruptcy") become similar; computed on sparse neighbours only;
3. ``linkage``: average linkage over a sparse similarity graph (pairs below a floor count as 0),
   merging while the average similarity between two groups reaches the threshold; a pair's
   similarity is discounted by the hours between the two articles (Tuesday's market close is
   not Monday's); past a size the window is grouped exactly in time slices whose groups then
   merge on their mean vectors, so work grows linearly and a big story keeps its frequent words;
4. ``review`` (with ``content``): every merge of step 3 is checked against the articles' full
   texts (names, weekdays and an outlet's house words left out): two groups whose texts can be
   compared and share no event words stay apart, so a country's rate cut and its budget deal do
   not become one story through the country's name; the uncertain merges (near the threshold,
   or tied mostly by one name) go to an ``adjudicate.LLMAdjudicator`` when one is given, which
   may part them. A veto reruns the linkage with the vetoed pairs kept apart;
5. ``identity``: two stories of an earlier run share a group only when clearly alike
   (stickiness); continuing stories keep their ids, new ones get ids derived from their oldest
   article, so reruns on the same data give the same ids.

``cluster.cluster_articles`` runs them. Optionally (``embed``) a sentence embedding of title and
lead joins the TF-IDF cosine in step 3, so one event reported in several languages becomes one
story. ``dedupe`` finds the near-duplicate articles inside a story (syndicated copies). The
tuning values of every step are ``aggregator.settings.ClusterParams`` (cluster_articles(...,
params=...)); README's "Clustering quality" has what the defaults score.

Memory stays bounded: similarities are computed in row blocks and only the strongest neighbours
of each article are kept; no n x n dense matrix is ever built.
"""

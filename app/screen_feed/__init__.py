"""The public screens' feed (党群亮服务可视屏): what a screen in a public place
shows of its area, anonymised, cached per area, and streamed."""

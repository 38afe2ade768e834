/* TeamOverview charts (Chart.js). The figures come from the page's JSON block
   (#report-data, written by web/reports.py); the tables on the page hold the same numbers.
   Durations arrive in seconds and are drawn in hours, since they count business hours.
   The chart instances are kept on window.AutoCRMReports.charts (the browser tests read them). */
(function () {
  "use strict";

  var holder = document.getElementById("report-data");
  if (!holder || typeof window.Chart === "undefined") {
    return;
  }
  var Chart = window.Chart;
  var data = JSON.parse(holder.textContent);
  // Distinct hues that keep >= 3:1 contrast on white (WCAG non-text contrast).
  var PALETTE = ["#1a56db", "#c2410c", "#047857", "#7e22ce", "#b91c1c", "#0e7490", "#a16207", "#be185d"];
  var CREATED = "#1a56db";
  var SOLVED = "#047857";
  var P50 = "#1a56db";
  var P90 = "#c2410c";
  var reduceMotion = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;

  Chart.defaults.color = "#3c4043";
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.maintainAspectRatio = false;
  if (reduceMotion) {
    Chart.defaults.animation = false;
  }
  Chart.defaults.plugins.legend.labels.boxWidth = 14;

  /* Same wording and rounding as web/reports.py duration(): "45 s", "12 m", "2 h 15 m". */
  function formatDuration(seconds) {
    if (seconds === null || seconds === undefined) {
      return "no data";
    }
    var whole = Math.floor(seconds + 0.5);
    if (whole < 60) {
      return whole + " s";
    }
    var minutes = Math.floor(whole / 60 + 0.5);
    if (minutes < 60) {
      return minutes + " m";
    }
    var hours = Math.floor(minutes / 60);
    var rest = minutes % 60;
    return rest ? hours + " h " + rest + " m" : hours + " h";
  }

  function hours(seconds) {
    return seconds === null || seconds === undefined ? null : seconds / 3600;
  }

  var teamNames = data.teams.map(function (t) { return t.name; });
  var charts = {};

  function draw(key, canvasId, config) {
    var canvas = document.getElementById(canvasId);
    if (canvas) {
      charts[key] = new Chart(canvas, config);
    }
  }

  function valueAxis(extra) {
    var axis = { beginAtZero: true, ticks: { precision: 0 } };
    Object.keys(extra || {}).forEach(function (k) { axis[k] = extra[k]; });
    return axis;
  }

  // Backlog: one line per team over the days of the period.
  var many = data.days.length > 45;
  draw("backlog", "chart-backlog", {
    type: "line",
    data: {
      labels: data.days,
      datasets: data.teams.map(function (t, i) {
        var colour = PALETTE[i % PALETTE.length];
        return {
          label: t.name,
          data: t.backlog,
          borderColor: colour,
          backgroundColor: colour,
          borderWidth: 2,
          pointRadius: many ? 0 : 2,
          tension: 0.2,
        };
      }),
    },
    options: {
      interaction: { mode: "index", intersect: false },
      scales: {
        x: { ticks: { maxRotation: 0, autoSkipPadding: 12, callback: function (value) {
          return this.getLabelForValue(value).slice(5); // MM-DD
        } } },
        y: valueAxis({ title: { display: true, text: "open tickets" } }),
      },
    },
  });

  draw("volume", "chart-volume", {
    type: "bar",
    data: {
      labels: teamNames,
      datasets: [
        { label: "Created", data: data.teams.map(function (t) { return t.created; }), backgroundColor: CREATED },
        { label: "Solved", data: data.teams.map(function (t) { return t.solved; }), backgroundColor: SOLVED },
      ],
    },
    options: { scales: { y: valueAxis({ title: { display: true, text: "tickets" } }) } },
  });

  draw("sla", "chart-sla", {
    type: "bar",
    data: {
      labels: teamNames,
      datasets: [{
        label: "SLA clocks met",
        data: data.teams.map(function (t) { return t.sla_percent; }),
        backgroundColor: SOLVED,
      }],
    },
    options: {
      plugins: {
        legend: { display: false },
        tooltip: { callbacks: { label: function (ctx) {
          return ctx.raw === null ? "no SLA clocks ended" : ctx.raw.toFixed(1) + " % met";
        } } },
      },
      scales: { y: valueAxis({ max: 100, ticks: { callback: function (v) { return v + " %"; } } }) },
    },
  });

  function timeChart(key, canvasId, field) {
    draw(key, canvasId, {
      type: "bar",
      data: {
        labels: teamNames,
        datasets: [
          { label: "Median", data: data.teams.map(function (t) { return hours(t[field][0]); }), backgroundColor: P50 },
          { label: "90th percentile", data: data.teams.map(function (t) { return hours(t[field][1]); }), backgroundColor: P90 },
        ],
      },
      options: {
        plugins: {
          tooltip: { callbacks: { label: function (ctx) {
            return ctx.dataset.label + ": " + formatDuration(ctx.raw === null ? null : ctx.raw * 3600);
          } } },
        },
        scales: {
          y: {
            beginAtZero: true,
            title: { display: true, text: "business hours" },
            ticks: { callback: function (v) { return formatDuration(v * 3600); } },
          },
        },
      },
    });
  }
  timeChart("firstResponse", "chart-first-response", "first_response");
  timeChart("resolution", "chart-resolution", "resolution");

  draw("csat", "chart-csat", {
    type: "bar",
    data: {
      labels: teamNames,
      datasets: [
        {
          label: "Average rating",
          data: data.teams.map(function (t) { return t.csat_average; }),
          backgroundColor: "#7e22ce",
          yAxisID: "rating",
        },
        {
          label: "Rated (% of solved)",
          data: data.teams.map(function (t) { return t.csat_response_percent; }),
          backgroundColor: "#0e7490",
          yAxisID: "rate",
        },
      ],
    },
    options: {
      plugins: {
        tooltip: { callbacks: { label: function (ctx) {
          if (ctx.raw === null) {
            return ctx.dataset.label + ": no ratings";
          }
          return ctx.dataset.yAxisID === "rate"
            ? ctx.dataset.label + ": " + ctx.raw.toFixed(0) + " %"
            : ctx.dataset.label + ": " + ctx.raw.toFixed(2) + " of 5";
        } } },
      },
      scales: {
        rating: { position: "left", min: 0, max: 5, ticks: { stepSize: 1 }, title: { display: true, text: "rating" } },
        rate: {
          position: "right", min: 0, max: 100,
          grid: { drawOnChartArea: false },
          ticks: { callback: function (v) { return v + " %"; } },
        },
      },
    },
  });

  // Workload: one horizontal bar per agent and team; the box grows with the number of agents.
  var agentBox = document.querySelector(".chart-box-agents");
  if (agentBox) {
    agentBox.style.height = Math.max(160, 60 + 30 * data.agents.length) + "px";
  }
  var severalTeams = data.teams.length > 1;
  draw("workload", "chart-workload", {
    type: "bar",
    data: {
      labels: data.agents.map(function (a) { return severalTeams ? a.name + " (" + a.team + ")" : a.name; }),
      datasets: [{
        label: "Open tickets assigned",
        data: data.agents.map(function (a) { return a.open; }),
        backgroundColor: CREATED,
      }],
    },
    options: {
      indexAxis: "y",
      plugins: { legend: { display: false } },
      scales: { x: valueAxis({ title: { display: true, text: "open tickets" } }) },
    },
  });

  window.AutoCRMReports = { charts: charts, formatDuration: formatDuration };
})();
